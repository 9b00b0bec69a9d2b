import Foundation
import Glibc
import Testing
@testable import Registry

/// The status page at `/`, checked in a real browser: headless Chromium renders it from a real
/// registryd with two models mid-rollout, and the test reads the rendered DOM and keeps a
/// screenshot (test-artifacts/status-page.png).
@Suite("status page", .serialized)
struct StatusPageTests {
    static let daemon = "\(repositoryRoot)/.build/debug/registryd"
    static let ctl = "\(repositoryRoot)/.build/debug/registryctl"
    static let chromium = "/usr/bin/chromium"

    @Test("the embedded page is StatusPage.html as committed, and loads nothing from elsewhere")
    func embedded() throws {
        let source = try Data(contentsOf: URL(fileURLWithPath: "\(repositoryRoot)/Sources/Registry/Control/StatusPage.html"))
        #expect(StatusPage.bytes == Array(source))
        let html = String(decoding: StatusPage.bytes, as: UTF8.self)
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http"), "the page loads nothing from elsewhere")
    }

    @Test("headless Chromium renders two models mid-rollout with versions, hashes, split bars, rollout gates, shadow agreement and charts")
    func rendersInChromium() throws {
        let dir = TempDirectory()
        let config = "\(dir.path)/registry.d"
        let root = "\(dir.path)/models"
        try FileManager.default.createDirectory(atPath: "\(config)/models", withIntermediateDirectories: true)
        try Data(#"{"model_root": "../models", "database": "../catalog.sqlite", "control_socket": "../s.sock", "listen": "127.0.0.1:0", "tcp_status_page": true, "settle_seconds": 0.2, "stats_flush_seconds": 0.3}"#.utf8)
            .write(to: URL(fileURLWithPath: "\(config)/registryd.json"))
        for (model, files) in [("digits", ["digits_logreg.onnx", "digits_mlp.onnx", "digits_mlp.onnx"]), ("ocr", ["digits_mlp.onnx", "digits_logreg.onnx"])] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(model)", withIntermediateDirectories: true)
            for (index, file) in files.enumerated() {
                try dropAtomically(root: root, model: model, version: index + 1, bytes: modelBytes(file, variant: index == 2 ? 3 : nil))
            }
        }
        let log = "\(dir.path)/log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: StatusPageTests.daemon)
        process.arguments = ["--config", config]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        func logText() -> String { String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self) }
        #expect(waitFor { logText().contains("registryd ready") })
        guard let range = logText().range(of: #"listen=127\.0\.0\.1:[0-9]+"#, options: .regularExpression),
              let port = Int(logText()[range].split(separator: ":").last ?? "") else {
            Issue.record("no TCP port in the ready line: \(logText())")
            return
        }
        let socket = "\(dir.path)/s.sock"
        let ctl = [StatusPageTests.ctl, "--socket", socket]
        for command in [["rollout", "start", "digits", "2", "--steps", "1,5,25,50,100", "--interval", "5m", "--min-requests", "200", "--reason", "canary for the MLP"],
                        ["rollout", "start", "ocr", "2", "--steps", "10,50,100", "--interval", "10m", "--reason", "second model"],
                        ["shadow", "digits", "3", "--percent", "20", "--reason", "compare"]] {
            let result = try run(ctl + command)
            #expect(result.status == 0, "\(command): \(result.output)")
        }
        // Traffic, so that the charts and the gate figures have something to show.
        let client = try HTTPTestClient(unixPath: socket)
        for index in 0..<300 {
            let model = index % 3 == 0 ? "ocr" : "digits"
            let response = try client.send("POST", "/v2/models/\(model)/infer", body: Array(digitsBody(try digitsRow(index % 50).0).utf8),
                                           headers: [("X-Routing-Key", "user-\(index)")])
            #expect(response.status == 200)
        }
        usleep(800_000)  // one statistics flush

        // The TCP switch opens the page and the read-only endpoints, and nothing that changes state.
        let tcp = try HTTPTestClient(tcpPort: port)
        let page = try tcp.send("GET", "/")
        #expect(page.status == 200 && page.headers["Content-Type"] == "text/html; charset=utf-8")
        #expect(page.headers["Content-Security-Policy"]?.contains("default-src 'none'") == true)
        #expect(try tcp.send("GET", "/v1/models").status == 200)
        let refused = try tcp.send("POST", "/v1/models/digits/rollback", body: Array("{}".utf8))
        #expect(refused.status == 403 && String(decoding: refused.body, as: UTF8.self).contains("read-only"))

        // Chromium, headless, against the TCP listener.
        let artifacts = "\(repositoryRoot)/test-artifacts"
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let screenshot = "\(artifacts)/status-page.png"
        try? FileManager.default.removeItem(atPath: screenshot)
        let common = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--user-data-dir=\(dir.path)/chromium",
                      "--virtual-time-budget=3000"]
        let url = "http://127.0.0.1:\(port)/"
        let dom = try runSeparately([StatusPageTests.chromium] + common + ["--dump-dom", url])
        #expect(dom.status == 0, "\(dom.stderr)")
        let html = dom.stdout
        #expect(html.contains("data-loaded=\"true\""), "the page did not finish its first render")
        #expect(!html.contains("data-error="), "the page reports an error")
        #expect(html.contains("data-model=\"digits\"") && html.contains("data-model=\"ocr\""))
        // Versions with their state and short hash.
        #expect(html.contains("data-version=\"1\"") && html.contains("data-state=\"live\""))
        #expect(html.contains("f5ad19947850"), "digits version 1's short SHA-256")
        // Rollouts, with their step, canary share and gates.
        #expect(html.components(separatedBy: "class=\"rollout").count - 1 >= 2)
        #expect(html.contains("step 1 of 5") && html.contains("canary 1%"))
        #expect(html.contains("step 1 of 3") && html.contains("canary 10%"))
        #expect(html.contains("data-gate=\"error_rate\"") && html.contains("data-gate=\"latency\"") && html.contains("data-gate=\"requests\""))
        // The live split as a bar, the shadow and the charts.
        #expect(html.contains("v1 99%") && html.contains("v2 1%"), "digits' split bar")
        #expect(html.contains("20% of routed requests mirrored"))
        #expect(html.components(separatedBy: "data-series=\"requests\"").count - 1 == 2)
        #expect(html.components(separatedBy: "<polyline").count - 1 >= 2, "charts drawn")

        let shot = try runSeparately([StatusPageTests.chromium] + common + ["--window-size=1280,1800", "--screenshot=\(screenshot)", url])
        #expect(shot.status == 0, "\(shot.stderr)")
        let png = FileManager.default.contents(atPath: screenshot) ?? Data()
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "not a PNG")
        if png.count > 24 {
            let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }, height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
            #expect(width == 1280 && height == 1800, "\(width)x\(height)")
        }
        #expect(png.count > 30_000, "a screenshot of a rendered page, not a blank one (\(png.count) bytes)")
        print("status page: screenshot kept at \(screenshot) (\(png.count) bytes)")
    }
}
