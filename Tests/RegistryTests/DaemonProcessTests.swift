import Foundation
import Glibc
import Testing
@testable import Registry

/// End-to-end tests of the real `registryd` executable, started as a child process.
@Suite("registryd process", .serialized)
struct DaemonProcessTests {
    static let binary = "\(repositoryRoot)/.build/debug/registryd"

    /// Writes a registry.d for a temp directory and returns its path.
    private func writeConfig(_ dir: TempDirectory, policy: String = #"{"on_new_version": "live", "keep_previous": 1}"#) throws -> String {
        let config = "\(dir.path)/registry.d"
        try FileManager.default.createDirectory(atPath: "\(config)/models", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(dir.path)/models/digits", withIntermediateDirectories: true)
        try Data(#"{"model_root": "../models", "database": "../catalog.sqlite", "control_socket": "../s.sock", "settle_seconds": 0.2, "log_level": "debug"}"#.utf8)
            .write(to: URL(fileURLWithPath: "\(config)/registryd.json"))
        try Data(policy.utf8).write(to: URL(fileURLWithPath: "\(config)/models/digits.json"))
        return config
    }

    private func launch(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DaemonProcessTests.binary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    @Test("--check-config validates and exits; a bad config exits 78 naming the file and key; a bad flag exits 64")
    func checkConfig() throws {
        let dir = TempDirectory()
        let config = try writeConfig(dir)
        let ok = try run([DaemonProcessTests.binary, "--check-config", "--config", config])
        #expect(ok.status == 0)
        #expect(ok.output.contains("configuration OK"))
        try Data(#"{"model_root": "../models", "colour": "blue"}"#.utf8).write(to: URL(fileURLWithPath: "\(config)/registryd.json"))
        let bad = try run([DaemonProcessTests.binary, "--check-config", "--config", config])
        #expect(bad.status == 78)
        #expect(bad.output.contains("registryd.json: unknown key 'colour'"), "\(bad.output)")
        let flag = try run([DaemonProcessTests.binary, "--cnofig", config])
        #expect(flag.status == 64)
        #expect(flag.output.contains("did you mean '--config'?"), "\(flag.output)")
        let help = try run([DaemonProcessTests.binary, "--help"])
        #expect(help.status == 0 && help.output.contains("USAGE: registryd"))
    }

    @Test("an artifact the daemon cannot read ends failed with a reason naming the permission problem; the daemon keeps serving")
    func unreadable() throws {
        let dir = TempDirectory()
        let config = try writeConfig(dir)
        try dropAtomically(root: "\(dir.path)/models", model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        // Root reads any file: run the daemon as 'nobody', owning its directory but not version 2's file.
        #expect(try run(["/bin/chown", "-R", "65534:65534", dir.path]).status == 0)
        #expect(chmod(dir.path, 0o755) == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", DaemonProcessTests.binary, "--config", config]
        let log = "\(dir.path)/registryd.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        defer { _ = terminate(process) }
        let catalogPath = "\(dir.path)/catalog.sqlite"
        func logTail() -> String { String(String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self).suffix(3000)) }
        #expect(waitFor { (try? Catalog.peekState(catalogPath, "digits", 1)) == "live" })

        let staging = "\(dir.path)/models/digits/.staging-2"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        try modelBytes("digits_mlp.onnx").write(to: URL(fileURLWithPath: "\(staging)/model.onnx"))
        #expect(chmod("\(staging)/model.onnx", 0o600) == 0)  // owned by root, unreadable for nobody
        #expect(rename(staging, "\(dir.path)/models/digits/2") == 0)
        #expect(waitFor { (try? Catalog.peekState(catalogPath, "digits", 2)) == "failed" },
                "version 2 is \(String(describing: try? Catalog.peekState(catalogPath, "digits", 2))); the daemon said: \(logTail())")
        let db = try Database(path: catalogPath, readOnly: true)
        let reason = try db.scalarText("SELECT reason FROM versions WHERE model = 'digits' AND version = 2") ?? ""
        db.close()
        #expect(reason.lowercased().contains("permission denied") && reason.contains("model.onnx"), "\(reason)")
        #expect(process.isRunning)
        let ctl = "\(repositoryRoot)/.build/debug/registryctl"
        let served = try run([ctl, "--socket", "\(dir.path)/s.sock", "predict", "digits", "--input", "input=" + (try digitsRow(0).0.map { String(Int($0)) }.joined(separator: ","))])
        #expect(served.status == 0 && served.output.contains("version 1"), "\(served.output)")
        #expect(try Catalog.peekState(catalogPath, "digits", 1) == "live")
    }

    @Test("SIGTERM stops the daemon cleanly with exit 0")
    func sigterm() throws {
        let dir = TempDirectory()
        let config = try writeConfig(dir)
        try dropAtomically(root: "\(dir.path)/models", model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        let process = try launch(["--config", config])
        let catalogPath = "\(dir.path)/catalog.sqlite"
        #expect(waitFor { (try? Catalog.peekState(catalogPath, "digits", 1)) == "live" })
        #expect(terminate(process), "registryd did not exit within 10 s of SIGTERM")
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
    }

    @Test("kill -9 at random moments during loads and swaps, 20 times: the catalog opens, keeps its last committed state and loses no event")
    func killNine() throws {
        let dir = TempDirectory()
        let config = try writeConfig(dir)
        let root = "\(dir.path)/models"
        let catalogPath = "\(dir.path)/catalog.sqlite"
        var generator = SystemRandomNumberGenerator()
        var eventsSoFar = 0
        var lastChainHash: String?
        for round in 1...20 {
            let process = try launch(["--config", config])
            // A new version arrives; kill while it is being verified, loaded or promoted.
            try dropAtomically(root: root, model: "digits", version: round, bytes: modelBytes(round % 2 == 0 ? "digits_mlp.onnx" : "digits_logreg.onnx", variant: round))
            usleep(UInt32.random(in: 0...400_000, using: &generator))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()

            let catalog = try Catalog(path: catalogPath)
            #expect(try catalog.integrityCheck() == "ok", "round \(round)")
            let chain = try catalog.verifyChain()
            #expect(chain.isIntact, "round \(round): \(chain.problems)")
            #expect(chain.events >= eventsSoFar, "round \(round): events went from \(eventsSoFar) to \(chain.events)")
            // Events committed before are still there, unchanged.
            if let lastChainHash, eventsSoFar > 0 {
                #expect(try catalog.events(limit: eventsSoFar).last?.hash == lastChainHash, "round \(round)")
            }
            eventsSoFar = chain.events
            lastChainHash = try catalog.events(limit: eventsSoFar).last?.hash
            catalog.close()
        }
        // A final, undisturbed start: every version admitted, the newest live, aliases consistent.
        let process = try launch(["--config", config])
        defer { #expect(terminate(process), "registryd did not exit within 10 s of SIGTERM") }
        #expect(waitFor(timeout: 60) { (try? Catalog.peekState(catalogPath, "digits", 20)) == "live" })
        let catalog = try Catalog(path: catalogPath)
        defer { catalog.close() }
        let versions = try catalog.versions(model: "digits")
        #expect(versions.count == 20)
        #expect(versions.allSatisfy { [.live, .ready, .retired].contains($0.state) }, "\(versions.map { "\($0.version):\($0.state)" })")
        #expect(try catalog.aliases(model: "digits")["production"] == 20)
        #expect(versions.filter { $0.state == .live }.map(\.version) == [20])
        #expect(try catalog.verifyChain().isIntact)
        print("kill -9 x20: \(try catalog.verifyChain().events) events intact, final production version 20")
    }
}

extension Catalog {
    /// Reads one version's state from a catalog another process may be writing (WAL allows it).
    static func peekState(_ path: String, _ model: String, _ version: Int) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        // Read-only: a peek must never create the journal files as root under a daemon that
        // runs as another user.
        let db = try Database(path: path, readOnly: true)
        defer { db.close() }
        return try db.scalarText("SELECT state FROM versions WHERE model = ? AND version = ?", [.text(model), .int(Int64(version))])
    }
}
