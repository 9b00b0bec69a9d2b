import Foundation
import Runtime
import Testing
@testable import Registry

/// Production whose file is changed on disk keeps serving the admitted bytes from memory, and
/// says so everywhere an operator looks: `registryctl versions`, `status` and `show`, the API,
/// the status page (in Chromium) and /metrics; restored, the file is `present` again.
@Suite("a changed file under production", .serialized)
struct ChangedFileTests {
    @Test("production whose file changed serves its admitted bytes, and versions, status, show, the status page and /metrics say the file changed and what to do")
    func everySurfaceSaysSo() throws {
        let registry = TestRegistry()
        registry.config.listen = "127.0.0.1:0"
        registry.config.tcpStatusPage = true
        try registry.makeModelDirectory("digits")
        let original = modelBytes("digits_logreg.onnx")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: original)
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.live]) != nil)

        // Other weights renamed over version 1's file.
        let staged = "\(registry.root)/digits/.other.onnx"
        try modelBytes("digits_mlp.onnx").write(to: URL(fileURLWithPath: staged))
        #expect(rename(staged, "\(registry.root)/digits/1/model.onnx") == 0)
        #expect(registry.wait { registry.record("digits", 1)?.file == .changed } != nil, "the scan did not judge the changed file")

        // Serving: the admitted bytes, from memory.
        let (row, expected, _) = try digitsRow()
        let answer = try registry.daemon!.predict(model: "digits", inputs: ["input": Tensor(shape: [1, 64], scalars: row)])
        #expect(answer.version.sha256 == SHA256.hex(of: original))
        #expect(try answer.outputs["label"]?.scalars(as: Int64.self) == [expected])
        let record = try #require(registry.record("digits", 1))
        #expect(record.state == .live && record.status.file == .changed)
        #expect(record.reason.contains("restore the file or promote another version (a restart cannot load it)"), "\(record.reason)")

        // The API and registryctl.
        let ctl = { (arguments: [String]) throws in
            try runSeparately([RegistryctlTests.binary, "--socket", registry.config.controlSocket] + arguments, environment: ["PATH": "/usr/bin:/bin"])
        }
        let (_, api) = try HTTPTestClient(unixPath: registry.config.controlSocket).json("GET", "/v1/models/digits")
        let first = (api["versions"] as? [[String: Any]])?.first
        #expect(first?["file"] as? String == "changed" && first?["state"] as? String == "live", "\(api)")
        // The size listed is the admitted bytes' (what serves), not the changed file's.
        #expect((first?["size"] as? NSNumber)?.intValue == original.count, "\(api)")
        #expect(modelBytes("digits_mlp.onnx").count != original.count)
        let versions = try ctl(["versions", "digits"])
        #expect(versions.status == 0 && versions.stdout.contains("live (file changed)") && versions.stdout.contains("restore the file"), "\(versions.stdout)")
        let status = try ctl(["status"])
        #expect(status.stdout.contains("live (file changed)"), "\(status.stdout)")
        let show = try ctl(["show", "digits@1"])
        #expect(show.stdout.contains("changed on disk: not the admitted bytes"), "\(show.stdout)")

        // /metrics.
        let metrics = String(decoding: try HTTPTestClient(unixPath: registry.config.controlSocket).send("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains("registryd_version_file_changed{model=\"digits\",version=\"1\",state=\"live\"} 1"), "\(metrics)")

        // The status page, rendered by Chromium.
        let port = try #require(registry.daemon!.tcpPort)
        let profile = TempDirectory()
        let dom = try runSeparately([StatusPageTests.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                     "--user-data-dir=\(profile.path)/chromium", "--virtual-time-budget=3000", "--dump-dom", "http://127.0.0.1:\(port)/"])
        #expect(dom.stdout.contains("data-loaded=\"true\""), "the page did not render: \(dom.stderr.suffix(500))")
        #expect(dom.stdout.contains("file-changed") && dom.stdout.contains(">file changed<"), "the page shows no file-changed badge")
        // Kept for a person to look at: test-artifacts/status-page-file-changed.png.
        let artifacts = "\(repositoryRoot)/test-artifacts"
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        _ = try runSeparately([StatusPageTests.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                               "--user-data-dir=\(profile.path)/chromium", "--virtual-time-budget=3000", "--window-size=1280,900",
                               "--screenshot=\(artifacts)/status-page-file-changed.png", "http://127.0.0.1:\(port)/"])

        // The admitted bytes put back: the file is present again, and the surfaces say so.
        try original.write(to: URL(fileURLWithPath: staged))
        #expect(rename(staged, "\(registry.root)/digits/1/model.onnx") == 0)
        #expect(registry.wait { registry.record("digits", 1)?.file == .present } != nil)
        #expect(registry.record("digits", 1)?.reason == "artifact restored with the admitted bytes")
        let after = String(decoding: try HTTPTestClient(unixPath: registry.config.controlSocket).send("GET", "/metrics").body, as: UTF8.self)
        #expect(!after.contains("registryd_version_file_changed{"))
    }
}
