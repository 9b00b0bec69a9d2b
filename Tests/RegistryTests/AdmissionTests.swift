import Foundation
import Glibc
import Testing
import Registry
import Runtime

@Suite("Discovery and admission", .serialized)
struct AdmissionTests {
    @Test("a version dropped in by atomic rename is ready within 1 s plus its load time")
    func atomicRename() throws {
        let registry = TestRegistry(settle: 5)  // a long settle window: only the rename can make it fast
        try registry.makeModelDirectory("digits")
        try registry.start()
        let started = Date()
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        let seconds = try #require(registry.waitForState("digits", 1, [.live], timeout: 20))
        print("atomic rename to live: \(String(format: "%.3f", seconds)) s (settle window 5 s)")
        #expect(Date().timeIntervalSince(started) < 5, "admitted by its rename, not by the settle window")
        let (row, expected, _) = try digitsRow()
        let answer = try registry.daemon!.predict(model: "digits", inputs: ["input": Tensor(shape: [1, 64], scalars: row)])
        #expect(try answer.outputs["label"]?.scalars(as: Int64.self) == [expected])
        #expect(answer.version.version == 1)
        #expect(answer.version.sha256 == SHA256.hex(of: modelBytes("digits_logreg.onnx")))
    }

    @Test("a file written slowly in chunks is never loaded partial, never recorded as failed, and ends ready")
    func slowWriter() throws {
        // Settle window far above the pause between chunks, so that a loaded, noisy machine
        // cannot stretch a pause past it.
        let registry = TestRegistry(settle: 1.5)
        try registry.makeModelDirectory("digits")
        try FileManager.default.createDirectory(atPath: "\(registry.root)/digits/1", withIntermediateDirectories: true)
        try registry.start()
        let bytes = modelBytes("digits_mlp.onnx")
        let path = "\(registry.root)/digits/1/model.onnx"
        // Created in place (not by rename, as FileManager.createFile would): a plain slow copy.
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        #expect(fd >= 0)
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        let chunk = bytes.count / 12 + 1
        var offset = 0
        while offset < bytes.count {
            try handle.write(contentsOf: bytes[offset..<min(offset + chunk, bytes.count)])
            offset += chunk
            Thread.sleep(forTimeInterval: 0.1)  // well inside the settle window
            #expect(registry.record("digits", 1)?.state != .failed)
        }
        try handle.close()
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        let record = try #require(registry.record("digits", 1))
        #expect(record.sha256 == SHA256.hex(of: bytes))
        let events = try registry.daemon!.catalog.events(model: "digits")
        #expect(!events.contains { $0.draft.action == "fail" }, "\(registry.lines.all.joined(separator: "\n"))")
    }

    @Test("identical bytes under two version numbers are recognised as the same artifact")
    func identicalBytes() throws {
        let registry = TestRegistry()
        try registry.makeModelDirectory("digits")
        try registry.start()
        let bytes = modelBytes("digits_logreg.onnx")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: bytes)
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: bytes)
        #expect(registry.waitForState("digits", 2, [.ready]) != nil)
        let second = try #require(registry.record("digits", 2))
        #expect(second.reason.contains("same artifact as 'digits' version 1"), "\(second.reason)")
        #expect(try registry.daemon!.catalog.versions(sha256: SHA256.hex(of: bytes)).map(\.version) == [1, 2])
    }

    @Test("changed bytes under a known version are quarantined and the old version keeps serving")
    func changedBytesQuarantined() throws {
        let registry = TestRegistry()
        try registry.makeModelDirectory("digits")
        try registry.start()
        let original = modelBytes("digits_logreg.onnx")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: original)
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        // Overwrite version 1 in place with other weights, by rename (so it is complete at once).
        let other = modelBytes("digits_mlp.onnx")
        let staged = "\(registry.root)/digits/.new-model.onnx"
        try other.write(to: URL(fileURLWithPath: staged))
        #expect(rename(staged, "\(registry.root)/digits/1/model.onnx") == 0)
        #expect(registry.wait { (try? registry.daemon!.catalog.quarantineCount(model: "digits", version: 1)) == 1 } != nil)
        let record = try #require(registry.record("digits", 1))
        #expect(record.state == .live)
        #expect(record.sha256 == SHA256.hex(of: original))
        let (row, expected, _) = try digitsRow()
        let answer = try registry.daemon!.predict(model: "digits", inputs: ["input": Tensor(shape: [1, 64], scalars: row)])
        #expect(answer.version.sha256 == SHA256.hex(of: original))
        #expect(try answer.outputs["label"]?.scalars(as: Int64.self) == [expected])
        let quarantine = try registry.daemon!.catalog.events(model: "digits").filter { $0.draft.action == "quarantine" }
        #expect(quarantine.count == 1)
        #expect(quarantine.first?.draft.after == SHA256.hex(of: other))
        #expect(quarantine.first?.draft.reason.contains("immutable") == true)
    }

    @Test("changed bytes under a loaded version that is not production: quarantined and unloaded (a pinned request says why); production serves on")
    func changedBytesUnderReadyVersion() throws {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .ready, keepPrevious: 2, requireSignature: false)])
        try registry.makeModelDirectory("digits")
        try registry.start()
        let original = modelBytes("digits_logreg.onnx")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: original)
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
        #expect(registry.waitForState("digits", 2, [.ready]) != nil)
        #expect(registry.record("digits", 1)?.state == .live)
        let staged = "\(registry.root)/digits/.new-model.onnx"
        try modelBytes("digits_mlp.onnx", variant: 7).write(to: URL(fileURLWithPath: staged))
        #expect(rename(staged, "\(registry.root)/digits/2/model.onnx") == 0)
        #expect(registry.waitForState("digits", 2, [.quarantined]) != nil, "a ready version with changed bytes stayed \(String(describing: registry.record("digits", 2)?.state))")
        #expect(registry.record("digits", 2)?.reason.contains("unloaded") == true, "\(registry.record("digits", 2)?.reason ?? "")")
        #expect(registry.daemon!.router.current.models["digits"]?.versions[2] == nil, "the changed version is still loaded")
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let pinned = try client.send("POST", "/v2/models/digits/versions/2/infer", body: Array(digitsBody(try digitsRow().0).utf8))
        #expect(pinned.status == 503 && String(decoding: pinned.body, as: UTF8.self).contains("quarantined"), "\(String(decoding: pinned.body, as: UTF8.self))")
        // It cannot be promoted; production (untouched) serves.
        #expect(try client.json("POST", "/v1/models/digits/promote", #"{"version": 2}"#).0 == 409)
        let served = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(try digitsRow().0).utf8))
        #expect(served.status == 200 && servedVersion(of: served) == 1)
        #expect(registry.record("digits", 1)?.state == .live && registry.record("digits", 1)?.sha256 == SHA256.hex(of: original))
        let events = try registry.daemon!.catalog.events(model: "digits", actions: ["quarantine"])
        // Two events, as for any quarantine of a known version: the bytes found, then the state change.
        #expect(events.allSatisfy { $0.draft.version == 2 } && events.count == 2, "\(events.map(\.draft))")
        #expect(events.contains { $0.draft.before == "ready" && $0.draft.after == "quarantined" })
    }

    @Test("truncated, non-ONNX, wrong-hash and badly signed artifacts end failed or quarantined with the cause, and the daemon keeps running")
    func badArtifacts() throws {
        let keys = try Ed25519.generateKeyPair()
        let stranger = try Ed25519.generateKeyPair()
        let registry = TestRegistry(trustedKeys: ["release": Data(keys.publicKey).base64EncodedString()])
        try registry.makeModelDirectory("digits")
        try registry.start()
        let good = modelBytes("digits_logreg.onnx")
        let goodHash = SHA256.hex(of: good)
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("truncated.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("invalid.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 3, bytes: good,
                           manifest: #"{"sha256": "\#(String(repeating: "0", count: 64))"}"#)
        let badSignature = try Ed25519.sign(digestHex: goodHash, privateKey: stranger.privateKey)
        try dropAtomically(root: registry.root, model: "digits", version: 4, bytes: good,
                           manifest: #"{"signature": "model.sig"}"#, extraFiles: ["model.sig": Data(badSignature)])
        try dropAtomically(root: registry.root, model: "digits", version: 5, bytes: good,
                           manifest: #"{"signature": "missing.sig"}"#)
        try dropAtomically(root: registry.root, model: "digits", version: 6, bytes: modelBytes("digits_logreg.onnx", variant: 6),
                           manifest: #"{"sha256": "nope"}"#)
        let goodSignature = try Ed25519.sign(digestHex: goodHash, privateKey: keys.privateKey)
        try dropAtomically(root: registry.root, model: "digits", version: 7, bytes: good,
                           manifest: #"{"signature": "model.sig"}"#, extraFiles: ["model.sig": Data(Data(goodSignature).base64EncodedString().utf8)])

        let expectations: [(Int, VersionState, String)] = [
            (1, .failed, "onnx runtime cannot load it"),
            (2, .failed, "onnx runtime cannot load it"),
            (3, .quarantined, "sha256 mismatch: manifest expects 000000"),
            (4, .quarantined, "bad signature"),
            (5, .quarantined, "missing.sig"),
            (6, .failed, "invalid manifest"),
        ]
        for (version, state, cause) in expectations {
            #expect(registry.waitForState("digits", version, [state]) != nil, "version \(version)")
            let record = registry.record("digits", version)
            #expect(record?.state == state, "version \(version): \(String(describing: record))")
            #expect(record?.reason.contains(cause) == true, "version \(version): '\(record?.reason ?? "")' should name '\(cause)'")
        }
        #expect(registry.waitForState("digits", 7, [.live]) != nil)
        #expect(registry.record("digits", 7)?.signatureStatus == "valid")
        #expect(registry.record("digits", 7)?.signatureKey == "release")
        // Nothing bad ever served.
        let table = registry.daemon!.router.current
        #expect(Set(table.models["digits"]?.versions.keys.map { $0 } ?? []) == [7])
    }

    @Test("the manifest's sample_inputs are the warm-up run: real rows pass, a row the model refuses fails the version, a malformed one names the key")
    func sampleInputs() throws {
        let registry = TestRegistry()
        try registry.makeModelDirectory("digits")
        try registry.start()
        func manifest(_ first: Int, datatype: String = "FP32") -> String {
            #"{"sample_inputs": {"inputs": [{"name": "input", "datatype": "\#(datatype)", "shape": [1, 64], "data": [\#(([first] + Array(repeating: 0, count: 63)).map(String.init).joined(separator: ","))]}]}}"#
        }
        // digits_faulty runs on zeros but fails at Run when feature 0 is outside 0...16.
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_faulty.onnx"), manifest: manifest(3))
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_faulty.onnx", variant: 2), manifest: manifest(100))
        #expect(registry.waitForState("digits", 2, [.failed]) != nil)
        let reason = registry.record("digits", 2)?.reason ?? ""
        #expect(reason.hasPrefix("warm-up run on the manifest's sample_inputs failed:"), "\(reason)")
        try dropAtomically(root: registry.root, model: "digits", version: 3, bytes: modelBytes("digits_logreg.onnx"), manifest: manifest(1, datatype: "FP99"))
        #expect(registry.waitForState("digits", 3, [.failed, .quarantined]) != nil)
        let malformed = registry.record("digits", 3)?.reason ?? ""
        #expect(malformed.contains("manifest.json: key 'sample_inputs':") && malformed.contains("FP99"), "\(malformed)")
        #expect(registry.daemon!.router.current.models["digits"]?.production?.version == 1)
    }

    @Test("a version that was once admitted and later failed keeps its bytes: new bytes under its number are quarantined, not admitted afresh")
    func failedAfterServingStaysImmutable() throws {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .live, keepPrevious: 1, requireSignature: false)])
        try registry.makeModelDirectory("digits")
        try registry.start()
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
        #expect(registry.waitForState("digits", 2, [.live]) != nil)
        let served = registry.record("digits", 1)?.sha256
        registry.stop()
        // Version 1 served, then failed (as when its file became unreadable, or a new ONNX
        // Runtime could not load it at a restart).
        let catalog = try Catalog(path: registry.database)
        try catalog.setState(model: "digits", version: 1, .failed, reason: "simulated: cannot load at restart", event: EventDraft(action: "fail", model: "digits", version: 1))
        catalog.close()
        try registry.start()
        #expect(registry.record("digits", 1)?.state == .failed)
        // Different bytes appear under version 1.
        let path = "\(registry.root)/digits/1/model.onnx"
        try modelBytes("digits_mlp.onnx", variant: 9).write(to: URL(fileURLWithPath: path + ".new"))
        #expect(rename(path + ".new", path) == 0)
        registry.daemon!.lifecycle.rescanNow()
        #expect(registry.waitForState("digits", 1, [.quarantined]) != nil, "new bytes under a version that served must not be admitted")
        #expect(registry.record("digits", 1)?.sha256 == served, "the recorded hash stays the one that served")
        #expect(registry.record("digits", 1)?.reason.contains("is immutable") == true, "\(registry.record("digits", 1)?.reason ?? "")")
        #expect(registry.daemon!.router.current.models["digits"]?.versions[1] == nil)

        // A version that failed its first admission is still admitted afresh when fixed.
        try dropAtomically(root: registry.root, model: "digits", version: 3, bytes: Data("not onnx".utf8))
        #expect(registry.waitForState("digits", 3, [.failed]) != nil)
        let path3 = "\(registry.root)/digits/3/model.onnx"
        try modelBytes("digits_logreg.onnx", variant: 3).write(to: URL(fileURLWithPath: path3 + ".new"))
        #expect(rename(path3 + ".new", path3) == 0)
        registry.daemon!.lifecycle.rescanNow()
        #expect(registry.waitForState("digits", 3, [.live]) != nil)
    }

    @Test("a policy that requires signatures quarantines an unsigned version")
    func signatureRequired() throws {
        let keys = try Ed25519.generateKeyPair()
        let registry = TestRegistry(policies: ["secure": ModelPolicy(onNewVersion: .live, keepPrevious: 1, requireSignature: true)],
                                    trustedKeys: ["k": Data(keys.publicKey).base64EncodedString()])
        try registry.makeModelDirectory("secure")
        try registry.start()
        try dropAtomically(root: registry.root, model: "secure", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        #expect(registry.waitForState("secure", 1, [.quarantined]) != nil)
        #expect(registry.record("secure", 1)?.reason.contains("requires a signature") == true)
    }

    @Test("names outside the safe set and symlinks out of the root are refused and reported")
    func escapesRefused() throws {
        let registry = TestRegistry()
        let outside = TempDirectory()
        try FileManager.default.createDirectory(atPath: "\(outside.path)/1", withIntermediateDirectories: true)
        try modelBytes("digits_logreg.onnx").write(to: URL(fileURLWithPath: "\(outside.path)/1/model.onnx"))
        try FileManager.default.createSymbolicLink(atPath: "\(registry.root)/escape", withDestinationPath: outside.path)
        try FileManager.default.createDirectory(atPath: "\(registry.root)/bad name/1", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(registry.root)/digits/007", withIntermediateDirectories: true)
        try registry.start()
        let problems = registry.lines.all.filter { $0.contains("model root entry refused") }
        #expect(problems.contains { $0.contains("escape") && $0.contains("outside the model root") }, "\(problems)")
        #expect(problems.contains { $0.contains("bad name") && $0.contains("not a valid model name") }, "\(problems)")
        #expect(problems.contains { $0.contains("007") && $0.contains("not a version") }, "\(problems)")
        #expect(registry.daemon!.lifecycle.status().isEmpty)
    }
}

/// Which thread pool a loaded model's session runs on.
@Suite("loader: thread choice")
struct LoaderThreadTests {
    /// `light_resnet50.onnx` from the onnx package in .venv (scripts/setup.sh installs it): a
    /// 78 KB file whose weights are made at load time, with a ResNet-50's cost per run.
    static func lightResNet() throws -> String {
        let lib = "\(repositoryRoot)/.venv/lib"
        let python = try #require(try FileManager.default.contentsOfDirectory(atPath: lib).first { $0.hasPrefix("python3") })
        let path = "\(lib)/\(python)/site-packages/onnx/backend/test/data/light/light_resnet50.onnx"
        try #require(FileManager.default.fileExists(atPath: path), "\(path) is missing: run scripts/setup.sh")
        return path
    }

    @Test("a small, cheap model runs on one thread of its own; a small file whose run is costly (light ResNet-50) is loaded again on the shared pool")
    func threadChoice() throws {
        let registry = TestRegistry()
        try registry.makeModelDirectory("digits")
        try registry.makeModelDirectory("resnet")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try dropAtomically(root: registry.root, model: "resnet", version: 1, bytes: try #require(FileManager.default.contents(atPath: try LoaderThreadTests.lightResNet())))
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        #expect(registry.waitForState("resnet", 1, [.live], timeout: 60) != nil)
        #expect(registry.config.singleThreadBelowBytes == 16 << 20)
        let digits = try registry.daemon!.router.resolve(model: "digits").0
        let resnet = try registry.daemon!.router.resolve(model: "resnet").0
        #expect(try #require(digits.servable as? ONNXServable).session.intraOpThreads == 1, "the digits model is small and cheap")
        #expect(try #require(resnet.servable as? ONNXServable).session.intraOpThreads == nil, "light_resnet50 is a 78 KB file but a costly run: the shared pool")
        #expect(digits.servable.runsOnCallingThread && !resnet.servable.runsOnCallingThread)
    }
}
