import Foundation
import Testing
@testable import Registry

/// registryd driven by a real, unmodified KServe v2 client: PyPI's tritonclient[http], with its
/// defaults (binary tensors, no Content-Type), from the hash-pinned `.venv-clients`.
@Suite("tritonclient")
struct TritonClientTests {
    @Test("tritonclient[http] works unchanged: health, metadata, binary and JSON inference, six datatypes, errors")
    func tritonclient() throws {
        let registry = TestRegistry()
        registry.config.listen = "127.0.0.1:0"
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        for (name, fixture) in [("id-bool", "identity_bool"), ("id-uint8", "identity_uint8"), ("id-int64", "identity_int64"),
                                ("id-fp16", "identity_float16"), ("id-fp64", "identity_double"), ("id-bytes", "identity_string")] {
            try registry.makeModelDirectory(name)
            try dropAtomically(root: registry.root, model: name, version: 1, bytes: modelBytes("\(fixture).onnx"))
        }
        try registry.start()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        let port = try #require(registry.daemon!.tcpPort)
        let result = try run(["\(repositoryRoot)/.venv-clients/bin/python", "\(repositoryRoot)/Tests/Clients/tritonclient_check.py",
                              "127.0.0.1:\(port)", "\(fixtures)/digits_test.json"])
        print(result.output)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("all checks passed"))
    }

    @Test("tritonclient's class_count receives byte for byte what a NumPy reference formatted the Triton way gives, for a plain output and for heads")
    func classification() throws {
        let registry = TestRegistry()
        registry.config.listen = "127.0.0.1:0"
        try registry.makeModelDirectory("digits-named")
        let names = ["zero", "one", "two", "three", "four", "five", "six", "seven"].map { "\"\($0)\"" }.joined(separator: ",")
        try dropAtomically(root: registry.root, model: "digits-named", version: 1, bytes: modelBytes("digits_logreg.onnx"),
                           manifest: #"{"labels":{"probabilities":[\#(names)]}}"#)
        try registry.makeModelDirectory("skin")
        try dropAtomically(root: registry.root, model: "skin", version: 1, bytes: modelBytes("skin_heads.onnx"),
                           manifest: try String(contentsOfFile: "\(fixtures)/skin_heads_manifest.json", encoding: .utf8))
        try registry.start()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        let port = try #require(registry.daemon!.tcpPort)
        let result = try run(["\(repositoryRoot)/.venv-clients/bin/python", "\(repositoryRoot)/Tests/Clients/tritonclient_classification_check.py",
                              "127.0.0.1:\(port)", "\(fixtures)/digits_test.json", "\(fixtures)/skin_heads_test.json"])
        print(result.output)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("all checks passed"))
    }
}
