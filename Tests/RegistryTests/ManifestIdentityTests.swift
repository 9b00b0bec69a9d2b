import Foundation
import Runtime
import Testing
@testable import Registry

/// A version's manifest is part of its identity, as its weights are: its bytes are recorded with
/// the artifact's, a changed manifest under a known version number is changed bytes (quarantined;
/// production keeps serving from memory), and a signature covers it.
@Suite("the manifest is part of the version", .serialized)
struct ManifestIdentityTests {
    static let labels = #"{"labels": {"label": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]}}"#
    static let relabelled = #"{"labels": {"label": ["nine", "eight", "seven", "six", "five", "four", "three", "two", "one", "zero"]}}"#

    static func writeManifest(_ registry: TestRegistry, _ model: String, _ version: Int, _ text: String) throws {
        // Rewritten in place, as an editor would.
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(registry.root)/\(model)/\(version)/manifest.json"))
    }

    @Test("an edited manifest under production: it keeps serving the admitted version from memory, says its file changed, the new manifest's bytes are quarantined once; put back, the file is present again")
    func productionManifestEdited() throws {
        let registry = TestRegistry()
        try registry.makeModelDirectory("digits")
        let original = modelBytes("digits_logreg.onnx")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: original, manifest: Self.labels)
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        let verifyEvent = try registry.daemon!.catalog.events(model: "digits", actions: ["verify"]).first
        #expect(verifyEvent?.draft.reason.contains("manifest sha256 \(SHA256.hex(of: Data(Self.labels.utf8)))") == true, "\(String(describing: verifyEvent))")

        try Self.writeManifest(registry, "digits", 1, Self.relabelled)
        registry.daemon!.lifecycle.rescanNow()
        #expect(registry.wait { registry.record("digits", 1)?.file == .changed } != nil, "the scan did not judge the edited manifest")
        let record = try #require(registry.record("digits", 1))
        #expect(record.state == .live)
        #expect(record.reason.hasPrefix("the manifest of version 1 of 'digits' changed: recorded \(SHA256.hex(of: Data(Self.labels.utf8))), found \(SHA256.hex(of: Data(Self.relabelled.utf8)))"), "\(record.reason)")
        #expect(record.reason.contains("production keeps serving the admitted bytes from memory"))
        let newManifest = SHA256.hex(of: Data(Self.relabelled.utf8))
        #expect(try registry.daemon!.catalog.quarantined(model: "digits", version: 1, sha256: newManifest))
        // Serving: the admitted version, with its admitted labels.
        let (row, expected, _) = try digitsRow()
        let answer = try registry.daemon!.predict(model: "digits", inputs: ["input": Tensor(shape: [1, 64], scalars: row)])
        #expect(answer.version.sha256 == SHA256.hex(of: original))
        #expect(try answer.outputs["label"]?.scalars(as: Int64.self) == [expected])
        #expect(registry.daemon!.router.current.models["digits"]?.production?.manifest?.labels["label"]?.first == "zero")
        // A second scan of the same edited file records nothing new.
        registry.daemon!.lifecycle.rescanNow()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        let quarantineEvents = try registry.daemon!.catalog.events(model: "digits", actions: ["quarantine"])
        #expect(quarantineEvents.count == 1, "\(quarantineEvents.map(\.draft))")

        try Self.writeManifest(registry, "digits", 1, Self.labels)
        registry.daemon!.lifecycle.rescanNow()
        #expect(registry.wait { registry.record("digits", 1)?.file == .present } != nil, "the restored manifest was not seen")
        #expect(registry.record("digits", 1)?.reason == "artifact restored with the admitted bytes")
    }

    @Test("a manifest added, or edited, under a loaded version that is not production: quarantined and unloaded; production serves on")
    func otherVersionManifestChanged() throws {
        let registry = try TestRegistry.digitsOneAndTwo()
        // Version 2 had no manifest: one appearing under it changes the version.
        try Self.writeManifest(registry, "digits", 2, Self.labels)
        registry.daemon!.lifecycle.rescanNow()
        #expect(registry.waitForState("digits", 2, [.quarantined]) != nil)
        let record = try #require(registry.record("digits", 2))
        #expect(record.reason.hasPrefix("the manifest of version 2 of 'digits' changed: recorded none, found \(SHA256.hex(of: Data(Self.labels.utf8))); unloaded"), "\(record.reason)")
        #expect(registry.daemon!.router.current.models["digits"]?.versions[2] == nil)
        #expect(registry.record("digits", 1)?.state == .live)
    }

    @Test("a manifest edited while registryd was down: production is not loaded at the next start, it is quarantined naming the manifest")
    func manifestEditedWhileDown() throws {
        let registry = TestRegistry()
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"), manifest: Self.labels)
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        registry.stop()
        try Self.writeManifest(registry, "digits", 1, Self.relabelled)
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.quarantined]) != nil)
        #expect(registry.record("digits", 1)?.reason.contains("changed: recorded \(SHA256.hex(of: Data(Self.labels.utf8))), found \(SHA256.hex(of: Data(Self.relabelled.utf8))) while registryd was down") == true,
                "\(registry.record("digits", 1)?.reason ?? "")")
        #expect(registry.daemon!.router.current.models["digits"]?.production == nil)
    }

    @Test("verify finds an edited manifest that no scan has seen")
    func verifyFindsEditedManifest() throws {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .ready, keepPrevious: 2, requireSignature: false)])
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"), manifest: Self.labels)
        try registry.start(watcher: DeafWatcher())
        #expect(registry.waitForState("digits", 2, [.ready]) != nil)
        try Self.writeManifest(registry, "digits", 2, Self.relabelled)
        let results = try registry.daemon!.lifecycle.verifyArtifacts(model: "digits", actor: "uid:0")
        let second = try #require(results.first { $0.version == 2 })
        #expect(second.problem?.contains("the manifest of version 2 of 'digits' changed") == true, "\(results)")
        #expect(results.first { $0.version == 1 }?.problem == nil)
        #expect(registry.record("digits", 2)?.state == .quarantined)
    }

    @Test("signatures: one over the artifact and the manifest admits a labelled version; one over the artifact alone does not when the manifest declares labels; a manifest swapped after signing is a bad signature")
    func signaturesCoverTheManifest() throws {
        let keys = try Ed25519.generateKeyPair()
        let registry = TestRegistry(trustedKeys: ["release": Data(keys.publicKey).base64EncodedString()])
        try registry.makeModelDirectory("digits")
        try registry.start()
        let bytes = modelBytes("digits_logreg.onnx")
        let artifact = SHA256.hex(of: bytes)
        let signed = #"{"signature": "model.sig", "labels": {"label": ["a","b","c","d","e","f","g","h","i","j"]}}"#
        let swapped = #"{"signature": "model.sig", "labels": {"label": ["j","i","h","g","f","e","d","c","b","a"]}}"#
        let covering = try Ed25519.sign(message: "\(artifact) \(SHA256.hex(of: Data(signed.utf8)))", privateKey: keys.privateKey)
        let artifactOnly = try Ed25519.sign(digestHex: artifact, privateKey: keys.privateKey)
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: bytes, manifest: signed, extraFiles: ["model.sig": Data(covering)])
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: bytes, manifest: signed, extraFiles: ["model.sig": Data(artifactOnly)])
        try dropAtomically(root: registry.root, model: "digits", version: 3, bytes: bytes, manifest: swapped, extraFiles: ["model.sig": Data(covering)])

        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        #expect(registry.record("digits", 1)?.signatureStatus == "valid")
        let verify = try registry.daemon!.catalog.events(model: "digits", actions: ["verify"]).first { $0.draft.version == 1 }
        #expect(verify?.draft.reason.hasSuffix("(the signature covers the artifact and the manifest)") == true, "\(String(describing: verify))")
        #expect(registry.waitForState("digits", 2, [.quarantined]) != nil)
        #expect(registry.record("digits", 2)?.reason.contains("covers the artifact only, but the manifest declares labels") == true, "\(registry.record("digits", 2)?.reason ?? "")")
        #expect(registry.waitForState("digits", 3, [.quarantined]) != nil)
        #expect(registry.record("digits", 3)?.reason.hasPrefix("bad signature") == true, "\(registry.record("digits", 3)?.reason ?? "")")
    }

    @Test("a manifest that is not UTF-8 text fails admission with the reason")
    func manifestNotUTF8() throws {
        let registry = TestRegistry()
        try registry.makeModelDirectory("digits")
        try registry.start()
        var utf16 = Data([0xFF, 0xFE])
        utf16.append(#"{"description": "x"}"#.data(using: .utf16LittleEndian)!)
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"), extraFiles: ["manifest.json": utf16])
        #expect(registry.waitForState("digits", 1, [.failed]) != nil)
        #expect(registry.record("digits", 1)?.reason.hasSuffix("manifest.json: not UTF-8 text") == true, "\(registry.record("digits", 1)?.reason ?? "")")
    }
}
