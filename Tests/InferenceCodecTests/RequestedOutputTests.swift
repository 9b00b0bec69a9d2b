import Foundation
import Tensors
import Testing
@testable import InferenceCodec

/// A request's `outputs`: each output's parameters are read strictly, so that a client never gets
/// a different answer than it asked for without being told.
@Suite("requested outputs")
struct RequestedOutputTests {
    static func decode(outputs: String) -> Result<InferenceRequest, InferenceRequest.Failure> {
        let body = #"{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}],"outputs":\#(outputs)}"#
        do throws(InferenceRequest.Failure) { return .success(try InferenceRequest.decode(Array(body.utf8), headerLength: nil)) } catch { return .failure(error) }
    }

    static func message(_ outputs: String) -> String {
        switch decode(outputs: outputs) {
        case .success: "decoded"
        case .failure(let failure): failure.message
        }
    }

    @Test("what tritonclient sends for InferRequestedOutput(name, class_count=k): binary_data and classification")
    func tritonclientForm() throws {
        let request = try Self.decode(outputs: #"[{"name":"probabilities","parameters":{"classification":3,"binary_data":true}},{"name":"label","parameters":{"binary_data":false}},{"name":"z"}]"#).get()
        #expect(request.outputs == [InferenceRequest.RequestedOutput(name: "probabilities", binary: true, classification: 3),
                                    InferenceRequest.RequestedOutput(name: "label", binary: false),
                                    InferenceRequest.RequestedOutput(name: "z")])
        // Parameters before the name: the same.
        let reordered = try Self.decode(outputs: #"[{"parameters":{"classification":1},"name":"p"}]"#).get()
        #expect(reordered.outputs == [InferenceRequest.RequestedOutput(name: "p", classification: 1)])
        #expect(try Self.decode(outputs: #"[{"name":"p","parameters":{"classification":4294967295}}]"#).get().outputs?.first?.classification == 4_294_967_295)
    }

    @Test("an output parameter registryd does not know is a 400 naming it (tritonclient's shared memory, say)")
    func unknownParameter() {
        let message = Self.message(#"[{"name":"probabilities","parameters":{"binary_data":false,"shared_memory_region":"r0"}}]"#)
        #expect(message.contains("output 'probabilities': unknown parameter 'shared_memory_region' (registryd knows binary_data and classification)"), "\(message)")
        #expect(Self.message(#"[{"name":"p","parameters":{"clasification":2}}]"#).contains("unknown parameter 'clasification'"))
        #expect(Self.message(#"[{"name":"p","shape":[1]}]"#).contains("unknown key 'shape' in a requested output"))
        #expect(Self.message(#"[{"name":"p","parameters":[1]}]"#).contains("an output's 'parameters' must be an object"))
    }

    @Test("classification must be a positive integer; binary_data a boolean; an output is asked for once", arguments: [
        (#"{"classification":0}"#, "parameter 'classification' must be a positive integer (how many classes to return), got 0"),
        (#"{"classification":-2}"#, "got -2"),
        (#"{"classification":2.5}"#, "got 2.5"),
        (#"{"classification":"3"}"#, #"got "3""#),
        (#"{"classification":true}"#, "got true"),
        (#"{"classification":null}"#, "got null"),
        (#"{"classification":4294967296}"#, "got 4294967296"),
        (#"{"binary_data":1}"#, "output 'p': parameter 'binary_data' must be true or false, got 1"),
    ])
    func badValues(parameters: String, expected: String) {
        let message = Self.message(#"[{"name":"p","parameters":\#(parameters)}]"#)
        #expect(message.hasPrefix("invalid inference request: output 'p': ") && message.contains(expected), "\(message)")
    }

    @Test("the same output asked for twice is refused, rather than answered by one of the two")
    func twice() {
        #expect(Self.message(#"[{"name":"p"},{"name":"p","parameters":{"classification":2}}]"#).contains("output 'p' is requested twice"))
    }
}
