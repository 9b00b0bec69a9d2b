import Foundation
import Tensors
import Testing
@testable import InferenceCodec

/// Triton's classification extension, as text: what tritonclient's `class_count` receives.
@Suite("classification")
struct ClassificationTests {
    static func strings(_ tensor: Tensor?) throws -> [String] {
        try #require(tensor).strings()
    }

    @Test("the top k of each row, highest first, scores written as std::to_string writes a float (%f)")
    func topK() throws {
        let scores = try Tensor(shape: [2, 4], scalars: [Float(0.1), 0.7, 0.15, 0.05, 2.5, -1, 1e-7, 1234.5678])
        let top = try #require(Classification.top(2, of: scores, labels: ["cat", "dog", "bird", "fish"]))
        #expect(top.elementType == .string && top.shape == [2, 2])
        // 0.7 as a float is 0.699999988079071..., which %f rounds to six decimals.
        #expect(try top.strings() == ["0.700000:1:dog", "0.150000:2:bird", "1234.567749:3:fish", "2.500000:0:cat"])
        // A score output of one row [C] gives [k].
        let row = try Tensor(shape: [3], scalars: [Float(0.25), 0.5, 0.25])
        let one = try #require(Classification.top(1, of: row))
        #expect(try one.shape == [1] && one.strings() == ["0.500000:1"])
    }

    @Test("equal scores keep index order (libstdc++'s order for Triton's rows of up to 16 classes)")
    func ties() throws {
        let scores = try Tensor(shape: [1, 6], scalars: [Float(0.2), 0.3, 0.2, 0.3, 0.0, 0.3])
        #expect(try Self.strings(Classification.top(6, of: scores)) == ["0.300000:1", "0.300000:3", "0.300000:5", "0.200000:0", "0.200000:2", "0.000000:4"])
        // Scores that differ below the sixth decimal are still ranked by value.
        let close = try Tensor(shape: [2], scalars: [Float(0.1000001), 0.1000002])
        #expect(try Self.strings(Classification.top(2, of: close)) == ["0.100000:1", "0.100000:0"])
    }

    @Test("k larger than the classes gives every class: [N, C], as Triton's min(k, C)")
    func moreThanClasses() throws {
        let scores = try Tensor(shape: [2, 3], scalars: [Float(1), 3, 2, 6, 5, 4])
        let top = try #require(Classification.top(10, of: scores))
        #expect(top.shape == [2, 3])
        #expect(try top.strings() == ["3.000000:1", "2.000000:2", "1.000000:0", "6.000000:0", "5.000000:1", "4.000000:2"])
        #expect(Classification.shape(for: [7, 3], count: 10) == [7, 3] && Classification.shape(for: [5], count: 2) == [2])
        // Rank 3: the classes of a row are everything after its first dimension, row-major.
        let cube = try Tensor(shape: [1, 2, 2], scalars: [Float(1), 4, 3, 2])
        #expect(try Self.strings(Classification.top(2, of: cube)) == ["4.000000:1", "3.000000:2"])
        // No rows: an empty answer of the right shape.
        let none = try #require(Classification.top(3, of: try Tensor(shape: [0, 5], scalars: [Float]())))
        #expect(none.shape == [0, 3] && none.elementCount == 0)
    }

    @Test("a label is appended only where the class has a non-empty name: missing, short and empty lists")
    func labels() throws {
        let scores = try Tensor(shape: [1, 4], scalars: [Float(0.4), 0.3, 0.2, 0.1])
        #expect(try Self.strings(Classification.top(4, of: scores)) == ["0.400000:0", "0.300000:1", "0.200000:2", "0.100000:3"])
        #expect(try Self.strings(Classification.top(4, of: scores, labels: ["a", "b"])) == ["0.400000:0:a", "0.300000:1:b", "0.200000:2", "0.100000:3"])
        #expect(try Self.strings(Classification.top(4, of: scores, labels: ["a", "", "c", "d", "e"])) == ["0.400000:0:a", "0.300000:1", "0.200000:2:c", "0.100000:3:d"])
        // Labels are bytes like any other: colons and UTF-8 pass through as given.
        #expect(try Self.strings(Classification.top(1, of: scores, labels: ["crème: brûlée"])) == ["0.400000:0:crème: brûlée"])
    }

    @Test("integer scores are written as integers, FP64 with %f, FP16 and BF16 widened to float")
    func datatypes() throws {
        #expect(try Self.strings(Classification.top(2, of: try Tensor(shape: [1, 3], scalars: [Int64(-5), Int64.max, 7]))) == ["9223372036854775807:1", "7:2"])
        #expect(try Self.strings(Classification.top(2, of: try Tensor(shape: [1, 3], scalars: [UInt8(3), 255, 9]))) == ["255:1", "9:2"])
        #expect(try Self.strings(Classification.top(1, of: try Tensor(shape: [1, 2], scalars: [UInt64.max, 1]))) == ["18446744073709551615:0"])
        #expect(try Self.strings(Classification.top(2, of: try Tensor(shape: [1, 2], scalars: [Double(0.1234567), 1e-9]))) == ["0.123457:0", "0.000000:1"])
        #expect(try Self.strings(Classification.top(1, of: try Tensor(shape: [1, 2], scalars: [Float16(0.5), Float16(-2)]))) == ["0.500000:0"])
        #expect(try Self.strings(Classification.top(1, of: try Tensor(shape: [1, 2], scalars: [BFloat16(1.5), BFloat16(3)]))) == ["3.000000:1"])
        // Large values: every digit printf writes (1e30 as a float is 1000000015047466219876688855040).
        #expect(try Self.strings(Classification.top(1, of: try Tensor(shape: [1], scalars: [Float(1e30)]))) == ["1000000015047466219876688855040.000000:0"])
        #expect(Classification.top(1, of: try Tensor(shape: [1, 2], scalars: [true, false])) == nil)
        #expect(Classification.top(1, of: try Tensor(shape: [1, 2], strings: ["a", "b"])) == nil)
        #expect(!Classification.supports(.bool) && !Classification.supports(.string) && Classification.supports(.float16) && Classification.supports(.int8))
    }

    @Test("infinities rank as numbers, NaN below every number; both written as glibc's printf writes them")
    func nonFinite() throws {
        let scores = try Tensor(shape: [1, 4], scalars: [Float.nan, -Float.infinity, Float.infinity, 1])
        #expect(try Self.strings(Classification.top(4, of: scores)) == ["inf:2", "1.000000:3", "-inf:1", "nan:0"])
        let negativeNaN = try Tensor(shape: [2], scalars: [-Float.nan, 0])
        #expect(try Self.strings(Classification.top(2, of: negativeNaN)) == ["0.000000:1", "-nan:0"])
    }
}
