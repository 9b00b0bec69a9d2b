import Foundation
import Testing
@testable import Registry

@Suite("Configuration")
struct ConfigTests {
    private func write(_ files: [String: String]) throws -> TempDirectory {
        let dir = TempDirectory()
        for (name, text) in files {
            let path = "\(dir.path)/\(name)"
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }
        return dir
    }

    private func loadError(_ files: [String: String]) throws -> String {
        let dir = try write(files)
        let error = #expect(throws: RegistryError.self) { try DaemonConfig.load(directory: dir.path) }
        return error?.message ?? ""
    }

    @Test("the example registry.d in the repository is valid and points at the example models")
    func exampleConfig() throws {
        let config = try DaemonConfig.load(directory: "\(repositoryRoot)/registry.d")
        #expect(config.modelRoot == "\(repositoryRoot)/examples/models")
        #expect(config.policy(for: "digits") == ModelPolicy(onNewVersion: .ready, keepPrevious: 1, requireSignature: false))
        #expect(config.controlSocketMode == 0o660)
    }

    @Test("an unknown key names the file and the key, and suggests the right one")
    func unknownKey() throws {
        let message = try loadError(["registryd.json": #"{"model_root": "/m", "setle_seconds": 1}"#])
        #expect(message.contains("registryd.json: unknown key 'setle_seconds' (did you mean 'settle_seconds'?)"), "\(message)")
    }

    @Test("a wrong type names the file, the key, what was expected and what was found")
    func wrongType() throws {
        let message = try loadError(["registryd.json": #"{"model_root": "/m", "onnx_threads": "two"}"#])
        #expect(message.contains("registryd.json: key 'onnx_threads': expected an integer, got a string"), "\(message)")
        let boolean = try loadError(["registryd.json": #"{"model_root": "/m", "onnx_threads": true}"#])
        #expect(boolean.contains("expected an integer, got a boolean"), "\(boolean)")
    }

    @Test("out-of-range values, bad modes and bad addresses are refused with the reason")
    func badValues() throws {
        #expect(try loadError(["registryd.json": #"{"model_root": "/m", "onnx_threads": -1}"#]).contains("expected an integer from 0 to 256, got -1"))
        #expect(try loadError(["registryd.json": #"{"model_root": "/m", "control_socket_mode": "rw"}"#]).contains("expected an octal file mode"))
        #expect(try loadError(["registryd.json": #"{"model_root": "/m", "listen": "localhost"}"#]).contains("expected host:port"))
        #expect(try loadError(["registryd.json": #"{"model_root": "/m", "log_level": "loud"}"#]).contains(#"expected one of "debug""#))
        #expect(try loadError(["registryd.json": #"{}"#]).contains("'model_root' is required"))
        #expect(try loadError(["registryd.json": #"{"model_root": "/m""#]).contains("not valid JSON"))
        #expect(try loadError(["registryd.json": "[1]"]).contains("expected a JSON object"))
    }

    @Test("a policy file is validated as strictly, and named in the error")
    func policyErrors() throws {
        let message = try loadError([
            "registryd.json": #"{"model_root": "/m"}"#,
            "models/digits.json": #"{"on_new_version": "sometimes"}"#,
        ])
        #expect(message.contains("models/digits.json: key 'on_new_version': expected one of \"ready\", \"candidate\", \"live\""), "\(message)")
        let unsigned = try loadError([
            "registryd.json": #"{"model_root": "/m"}"#,
            "models/digits.json": #"{"require_signature": true}"#,
        ])
        #expect(unsigned.contains("lists no trusted_keys"), "\(unsigned)")
        let badName = try loadError(["registryd.json": #"{"model_root": "/m"}"#, "models/..bad.json": "{}"])
        #expect(badName.contains("not a valid model name"), "\(badName)")
    }

    @Test("relative paths are taken relative to the configuration directory")
    func relativePaths() throws {
        let dir = try write(["registryd.json": #"{"model_root": "models", "database": "state/db.sqlite"}"#])
        let config = try DaemonConfig.load(directory: dir.path)
        #expect(config.modelRoot == "\(dir.path)/models")
        #expect(config.database == "\(dir.path)/state/db.sqlite")
    }

    @Test("a manifest is validated: hash format, signature file name, labels")
    func manifests() throws {
        let good = try Manifest.parse(file: "m.json", data: Data(#"{"description": "d", "sha256": "\#(String(repeating: "AB", count: 32))", "labels": {"label": ["a", "b"]}, "metadata": {"k": 1}}"#.utf8))
        #expect(good.sha256 == String(repeating: "ab", count: 32))
        #expect(good.labels == ["label": ["a", "b"]])
        #expect(good.metadataJSON == #"{"k":1}"#)
        #expect(#expect(throws: RegistryError.self) { try Manifest.parse(file: "m.json", data: Data(#"{"sha256": "xyz"}"#.utf8)) }?.message.contains("expected 64 hexadecimal digits") == true)
        #expect(#expect(throws: RegistryError.self) { try Manifest.parse(file: "m.json", data: Data(#"{"signature": "../../etc/passwd"}"#.utf8)) }?.message.contains("no '/'") == true)
        #expect(#expect(throws: RegistryError.self) { try Manifest.parse(file: "m.json", data: Data(#"{"labels": ["a"]}"#.utf8)) }?.message.contains("'labels'") == true)
        #expect(#expect(throws: RegistryError.self) { try Manifest.parse(file: "m.json", data: Data(#"{"author": "x"}"#.utf8)) }?.message.contains("unknown key 'author'") == true)
    }

    @Test("model names: a safe character set only")
    func modelNames() {
        #expect(ModelName.isValid("digits"))
        #expect(ModelName.isValid("resnet-50_v2.onnx"))
        for bad in ["", ".hidden", "-x", "a/b", "..", "naïve", "a b", String(repeating: "x", count: 65)] {
            #expect(!ModelName.isValid(bad), "\(bad)")
        }
    }
}
