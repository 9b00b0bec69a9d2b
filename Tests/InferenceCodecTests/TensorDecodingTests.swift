import Foundation
import Tensors
import Testing
@testable import InferenceCodec

/// The v2 JSON decoder reads `data` in the same pass as the request when `name`, `datatype` and
/// `shape` come first (what tritonclient and json.dumps write), and in a second pass over its
/// byte range otherwise. Both must give the same tensor and refuse the same bad input.
@Suite("JSON tensor data")
struct TensorDecodingTests {
    /// An input object with its keys in the usual order (data last) or with data first.
    static func body(_ data: String, datatype: String = "FP32", shape: String = "[2,3]", dataFirst: Bool) -> [UInt8] {
        let input = dataFirst
            ? #"{"data":\#(data),"name":"x","datatype":"\#(datatype)","shape":\#(shape)}"#
            : #"{"name":"x","datatype":"\#(datatype)","shape":\#(shape),"data":\#(data)}"#
        return Array(#"{"inputs":[\#(input)]}"#.utf8)
    }

    static func decode(_ body: [UInt8]) -> Result<InferenceRequest, InferenceRequest.Failure> {
        do throws(InferenceRequest.Failure) { return .success(try InferenceRequest.decode(body, headerLength: nil)) } catch { return .failure(error) }
    }

    @Test("flat or nested, data first or last: the same scalars, bit for bit")
    func sameTensorEitherOrder() throws {
        let layouts = ["[1.5,-2,0.30000001192092896,1e3,0.5019607843137255,0.10196078431372549]",
                       "[[1.5,-2,0.30000001192092896],[1e3,0.5019607843137255,0.10196078431372549]]",
                       " [ [ 1.5 , -2 ,0.30000001192092896 ] ,\n[1e3, 0.5019607843137255, 0.10196078431372549 ] ] "]
        let expected: [Float] = [1.5, -2, 0.30000001192092896, 1e3, 0.5019607843137255, 0.10196078431372549]
        for layout in layouts {
            for dataFirst in [false, true] {
                let request = try Self.decode(Self.body(layout, dataFirst: dataFirst)).get()
                let tensor = try #require(request.inputs["x"])
                #expect(tensor.shape == [2, 3])
                #expect(try tensor.scalars(as: Float.self).map(\.bitPattern) == expected.map(\.bitPattern), "\(layout) dataFirst \(dataFirst)")
            }
        }
        let ints = try Self.decode(Self.body("[[1,2,3],[4,5,-6]]", datatype: "INT8", dataFirst: false)).get()
        #expect(try ints.inputs["x"]!.scalars(as: Int8.self) == [1, 2, 3, 4, 5, -6])
        let strings = try Self.decode(Self.body(#"[["a","b\"]","c"],["[","\u005d","ü"]]"#, datatype: "BYTES", dataFirst: true)).get()
        #expect(try strings.inputs["x"]!.strings() == ["a", "b\"]", "c", "[", "]", "ü"])
    }

    @Test("bad data is refused with the same named error whichever order the keys come in")
    func sameErrorsEitherOrder() {
        let cases: [(data: String, datatype: String, expected: String)] = [
            ("[1,2,3,4,5]", "FP32", "needs 6 elements, the data holds 5"),
            ("[1,2,3,4,5,6,7]", "FP32", "needs 6 elements, the data holds more"),
            ("[[1,2,3],[4,5,6]", "FP32", "expected ',' or '}'"),   // unterminated: the request is not JSON
            ("[1,2,3 4,5,6]", "FP32", "expected ',' or ']'"),
            ("[1,2,3,4,5,6,]", "FP32", "holds more"),
            ("[1,2,3,4,5,]", "FP32", "expected a number"),
            ("[1,2,\"3\",4,5,6]", "FP32", "expected a number"),
            ("[1,2,3,4,5,1e39]", "FP32", "out of range for FP32"),
            ("[1,2,3,4,5,300]", "UINT8", "300 is out of range for UInt8"),
            ("[1,2,3,4,5,0.5]", "INT32", "expected an integer"),
            (String(repeating: "[", count: 40) + "1" + String(repeating: "]", count: 40), "FP32", "nested deeper than 32"),
            ("[1,2,3,4,5,01]", "FP32", "expected ',' or ']'"),
            ("[1,2,3,4,5,-]", "FP32", "expected a number"),
            ("[1,2,3,4,5,1.]", "FP32", "expected digits after '.'"),
        ]
        for (data, datatype, expected) in cases {
            for dataFirst in [false, true] {
                switch Self.decode(Self.body(data, datatype: datatype, dataFirst: dataFirst)) {
                case .success:
                    Issue.record("\(data) as \(datatype) (dataFirst \(dataFirst)) was accepted")
                case .failure(let error):
                    #expect(error.message.contains(expected), "\(data) as \(datatype) (dataFirst \(dataFirst)): \(error.message)")
                    if !expected.isEmpty && !expected.hasPrefix("expected") {
                        #expect(error.message.contains("input 'x'"), "\(error.message)")
                    }
                }
            }
        }
    }

    @Test("data twice, or data with binary_data_size, is refused")
    func conflictingData() {
        let twice = Array(#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],"data":[2]}]}"#.utf8)
        guard case .failure(let error) = Self.decode(twice) else { Issue.record("data twice accepted"); return }
        #expect(error.message.contains("'data' given twice"))
        for input in [#"{"name":"x","datatype":"FP32","shape":[1],"data":[1],"parameters":{"binary_data_size":4}}"#,
                      #"{"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4},"data":[1]}"#] {
            var body = Array(#"{"inputs":[\#(input)]}"#.utf8)
            let length = body.count
            body += [0, 0, 128, 63]
            do throws(InferenceRequest.Failure) {
                _ = try InferenceRequest.decode(body, headerLength: length)
                Issue.record("\(input) accepted")
            } catch {
                #expect(error.message.contains("has both 'data' and parameters.binary_data_size"), "\(error.message)")
            }
        }
    }
}
