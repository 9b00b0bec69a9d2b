import Testing
import Runtime

/// Deterministic bytes for a tensor of `count` elements of `type`, covering every bit pattern
/// class the type has (sign bits, NaN payloads for floats, extremes for integers).
private func sampleBytes(_ type: ElementType, count: Int) -> [UInt8] {
    var generator = SplitMix64(seed: UInt64(type.rawValue))
    var bytes: [UInt8] = []
    for _ in 0..<(count * (type.byteSize ?? 0)) { bytes.append(UInt8(truncatingIfNeeded: generator.next())) }
    if type == .bool { bytes = bytes.map { $0 & 1 } }
    return bytes
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Element types")
struct ElementRoundTripTests {
    @Test("every numeric element type round-trips through an Identity model bit for bit",
          arguments: ElementType.allCases.filter { $0 != .string })
    func numericRoundTrip(type: ElementType) throws {
        let session = try Session(path: Fixtures.model("identity_\(type).onnx"), environment: Fixtures.environment())
        #expect(session.inputs == [TensorInfo(name: "x", elementType: type, shape: [.variable(name: "N"), .fixed(4)])])
        let bytes = sampleBytes(type, count: 3 * 4)
        let input = try bytes.withUnsafeBytes { try Tensor(type, shape: [3, 4], bytes: $0) }
        let output = try #require(try session.run(["x": input])["y"])
        #expect(output.elementType == type)
        #expect(output.shape == [3, 4])
        let back = try output.withUnsafeBytes { Array($0) }
        #expect(back == bytes)
    }

    @Test("strings round-trip bit for bit, including empty, non-ASCII and embedded NUL bytes")
    func stringRoundTrip() throws {
        let session = try Session(path: Fixtures.model("identity_string.onnx"), environment: Fixtures.environment())
        let values: [[UInt8]] = [
            [], Array("digits".utf8), Array("Zürich 東京 🚑".utf8), [0x61, 0x00, 0x62],
            [0xFF, 0xFE, 0x00], Array(repeating: 0x41, count: 10_000), Array("x".utf8), [0x00],
        ]
        let input = try Tensor(shape: [2, 4], byteStrings: values)
        let output = try #require(try session.run(["x": input])["y"])
        #expect(output.shape == [2, 4])
        #expect(try output.byteStrings() == values)
        #expect(throws: RuntimeError.self) { try output.strings() }  // [0xFF, 0xFE] is not UTF-8
    }

    @Test("typed arrays go in and come out unchanged")
    func typedArrays() throws {
        let env = try Fixtures.environment()
        let floats: [Float] = [0, -0.0, 1.5, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude, 3]
        let f = try Session(path: Fixtures.model("identity_float.onnx"), environment: env)
        #expect(try f.run(["x": Tensor(shape: [2, 4], scalars: floats)])["y"]?.scalars(as: Float.self) == floats)

        let halves: [Float16] = [0, 1, -2, 65504, .infinity, 0.5, 0.25, -0.0]
        let h = try Session(path: Fixtures.model("identity_float16.onnx"), environment: env)
        #expect(try h.run(["x": Tensor(shape: [2, 4], scalars: halves)])["y"]?.scalars(as: Float16.self) == halves)

        let brains = [Float](arrayLiteral: 1, -2, 3.5, 0.15625, 100, -0.0, 7, 8).map(BFloat16.init)
        let b = try Session(path: Fixtures.model("identity_bfloat16.onnx"), environment: env)
        #expect(try b.run(["x": Tensor(shape: [2, 4], scalars: brains)])["y"]?.scalars(as: BFloat16.self) == brains)

        let flags: [Bool] = [true, false, false, true, true, true, false, false]
        let bo = try Session(path: Fixtures.model("identity_bool.onnx"), environment: env)
        #expect(try bo.run(["x": Tensor(shape: [2, 4], scalars: flags)])["y"]?.scalars(as: Bool.self) == flags)

        let longs: [Int64] = [.min, .max, 0, -1, 1, 42, 1 << 40, -(1 << 50)]
        let l = try Session(path: Fixtures.model("identity_int64.onnx"), environment: env)
        #expect(try l.run(["x": Tensor(shape: [2, 4], scalars: longs)])["y"]?.scalars(as: Int64.self) == longs)
    }

    @Test("an empty batch (zero rows) runs and returns an empty tensor")
    func emptyBatch() throws {
        let session = try Session(path: Fixtures.model("identity_float.onnx"), environment: Fixtures.environment())
        let output = try #require(try session.run(["x": Tensor(shape: [0, 4], scalars: [Float]())])["y"])
        #expect(output.shape == [0, 4])
        #expect(try output.scalars(as: Float.self).isEmpty)
    }

    @Test("bfloat16 converts from Float with round-to-nearest-even and keeps NaN a NaN")
    func bfloat16Conversion() {
        #expect(BFloat16(1.0).bitPattern == 0x3F80)
        #expect(BFloat16(Float(bitPattern: 0x3F80_8000)).bitPattern == 0x3F80)  // tie, even stays
        #expect(BFloat16(Float(bitPattern: 0x3F81_8000)).bitPattern == 0x3F82)  // tie, odd rounds up
        #expect(BFloat16(Float(bitPattern: 0x3F80_8001)).bitPattern == 0x3F81)
        #expect(BFloat16(.nan).floatValue.isNaN)
        #expect(BFloat16(-2.5).floatValue == -2.5)
    }
}
