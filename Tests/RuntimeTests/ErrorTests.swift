import Foundation
import Testing
import Runtime

@Suite("Errors")
struct ErrorTests {
    let digits: Session
    let row: Tensor

    init() throws {
        digits = try Session(path: Fixtures.model("digits_logreg.onnx"), environment: Fixtures.environment())
        row = try Tensor(shape: [1, 64], scalars: [Float](repeating: 0, count: 64))
    }

    private func expectError(_ code: RuntimeError.Code, mentioning words: [String], _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected a \(code) error")
        } catch let error as RuntimeError {
            #expect(error.code == code, "\(error)")
            for word in words { #expect(error.message.contains(word), "'\(error.message)' should mention '\(word)'") }
        } catch {
            Issue.record("unexpected error type: \(error)")
        }
    }

    @Test("a wrong input name names the input and the model's inputs")
    func wrongInputName() {
        expectError(.unknownName, mentioning: ["'pixels'", "input"]) { _ = try digits.run(["pixels": row]) }
    }

    @Test("a missing input is named")
    func missingInput() throws {
        let multi = try Session(path: Fixtures.model("multi_io.onnx"), environment: Fixtures.environment())
        let a = try Tensor(shape: [1, 3], scalars: [Float](repeating: 1, count: 3))
        expectError(.missingInput, mentioning: ["'c'"]) { _ = try multi.run(["a": a, "b": a]) }
    }

    @Test("a wrong requested output is named")
    func wrongOutputName() {
        expectError(.unknownName, mentioning: ["'scores'"]) { _ = try digits.run(["input": row], outputs: ["scores"]) }
    }

    @Test("a wrong element type names both types")
    func wrongElementType() throws {
        let doubles = try Tensor(shape: [1, 64], scalars: [Double](repeating: 0, count: 64))
        expectError(.typeMismatch, mentioning: ["'input'", "float", "double"]) { _ = try digits.run(["input": doubles]) }
    }

    @Test("a wrong rank or a wrong fixed dimension names the expected shape")
    func wrongShape() throws {
        let flat = try Tensor(shape: [64], scalars: [Float](repeating: 0, count: 64))
        expectError(.shapeMismatch, mentioning: ["'input'", "[64]"]) { _ = try digits.run(["input": flat]) }
        let narrow = try Tensor(shape: [1, 63], scalars: [Float](repeating: 0, count: 63))
        expectError(.shapeMismatch, mentioning: ["'input'", "64", "[1, 63]"]) { _ = try digits.run(["input": narrow]) }
    }

    @Test("a truncated model file is a typed load error naming the file")
    func truncatedFile() throws {
        expectError(.invalidProtobuf, mentioning: ["truncated.onnx"]) {
            _ = try Session(path: Fixtures.model("truncated.onnx"), environment: Fixtures.environment())
        }
    }

    @Test("a file that is not ONNX is a typed load error naming the file")
    func notONNX() throws {
        expectError(.invalidProtobuf, mentioning: ["invalid.onnx"]) {
            _ = try Session(path: Fixtures.model("invalid.onnx"), environment: Fixtures.environment())
        }
    }

    @Test("a missing file is a typed error naming the path")
    func missingFile() throws {
        expectError(.noSuchFile, mentioning: ["/nonexistent/model.onnx"]) {
            _ = try Session(path: "/nonexistent/model.onnx", environment: Fixtures.environment())
        }
    }

    @Test("a model that fails at run time on some inputs throws, and keeps serving others")
    func runtimeFailure() throws {
        let faulty = try Session(path: Fixtures.model("digits_faulty.onnx"), environment: Fixtures.environment())
        var bad = [Float](repeating: 0, count: 64)
        bad[0] = 100
        let badRow = try Tensor(shape: [1, 64], scalars: bad)
        let error = #expect(throws: RuntimeError.self) { try faulty.run(["input": badRow]) }
        #expect(error?.message.hasPrefix("running the model: ") == true, "\(String(describing: error))")
        #expect(try faulty.run(["input": row])["label"]?.scalars(as: Int64.self).count == 1)
    }

    @Test("malformed tensors are refused before they reach ONNX Runtime")
    func malformedTensors() {
        expectError(.invalidTensor, mentioning: ["needs 6 elements, got 5"]) {
            _ = try Tensor(shape: [2, 3], scalars: [Float](repeating: 0, count: 5))
        }
        expectError(.invalidTensor, mentioning: ["negative"]) { _ = try Tensor(shape: [-1, 3], scalars: [Float]()) }
        expectError(.invalidTensor, mentioning: ["too many"]) { _ = try Tensor(shape: [1 << 30, 1 << 30, 1 << 30], scalars: [Float]()) }
        expectError(.invalidTensor, mentioning: ["needs 16 bytes, got 15"]) {
            try [UInt8](repeating: 0, count: 15).withUnsafeBytes { _ = try Tensor(.float, shape: [4], bytes: $0) }
        }
        expectError(.invalidTensor, mentioning: ["element 1 is 2"]) {
            try [UInt8]([1, 2]).withUnsafeBytes { _ = try Tensor(.bool, shape: [2], bytes: $0) }
        }
        expectError(.typeMismatch, mentioning: ["float", "int64"]) {
            _ = try Tensor(shape: [1], scalars: [Float(1)]).scalars(as: Int64.self)
        }
    }

    @Test("a cancelled run stops with a cancelled error")
    func cancellation() throws {
        let cancellation = try RunCancellation()
        cancellation.cancel()
        expectError(.cancelled, mentioning: ["cancelled"]) {
            _ = try digits.run(["input": row], cancellation: cancellation)
        }
    }

    @Test("asking for CUDA from a library without it is a clear error listing what it offers")
    func executionProviders() throws {
        let env = try Fixtures.environment()
        let providers = env.availableProviders
        print("onnx runtime \(env.version), execution providers: \(providers.joined(separator: ", "))")
        #expect(providers.contains("CPUExecutionProvider"))
        if !providers.contains("CUDAExecutionProvider") {
            expectError(.executionProviderFailure, mentioning: ["cuda", "CPUExecutionProvider"]) {
                _ = try Session(path: Fixtures.model("digits_logreg.onnx"), environment: env,
                                options: SessionOptions(executionProvider: .cuda(deviceID: 0)))
            }
        }
    }

    @Test("a second environment with another configuration is refused, not silently ignored")
    func oneEnvironment() throws {
        _ = try Fixtures.environment()
        expectError(.invalidArgument, mentioning: ["already exists"]) {
            _ = try Environment.shared(Environment.Configuration(intraOpThreads: 7))
        }
    }
}
