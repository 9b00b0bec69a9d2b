import Foundation
import Glibc
import Testing
@testable import Registry

/// Loads never run on the control queue: while a model hashes and loads (a rollback's reload, the
/// startup restore), the control API, /metrics and health answer. The real daemon, with a load
/// slowed by fault injection only while a marker file exists, so that the versions it starts
/// with load at once.
@Suite("Faults: slow loads do not stall the control plane", .serialized)
struct ControlDuringLoadTests {
    /// A daemon whose digits version 1 is retired behind version 2 (keep_previous 0), with loads
    /// slowed by `delay` seconds once `slow` exists.
    struct Retired {
        let setup: CrashPointTests.Setup
        let process: Process
        var slow: String { "\(setup.dir.path)/slow-loads" }

        init(delay: Double) throws {
            setup = try CrashPointTests.Setup()
            try Data(#"{"on_new_version": "live", "keep_previous": 0}"#.utf8).write(to: URL(fileURLWithPath: "\(setup.config)/models/digits.json"))
            try dropAtomically(root: setup.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
            process = try setup.launch(killAt: nil, loadDelay: delay, environment: ["REGISTRYD_FAULT_LOAD_DELAY_WHILE": "\(setup.dir.path)/slow-loads"])
            try dropAtomically(root: setup.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
            #expect(waitFor(timeout: 30) { setup.state(2) == "live" && setup.state(1) == "retired" }, "\(CrashPointTests.text(setup.log).suffix(2000))")
            FileManager.default.createFile(atPath: slow, contents: nil)
        }

        /// `registryctl rollback digits`, started in the background.
        func startRollback() throws -> (Process, Pipe) {
            let rollback = Process()
            rollback.executableURL = URL(fileURLWithPath: CrashPointTests.ctl)
            rollback.arguments = ["--socket", setup.socket, "rollback", "digits", "--reason", "slow reload"]
            let output = Pipe()
            rollback.standardOutput = output
            rollback.standardError = output
            try rollback.run()
            return (rollback, output)
        }

        func loadStarted(_ cause: String) -> Bool {
            CrashPointTests.text(setup.log).split(separator: "\n").contains { $0.contains("load started") && $0.contains("model.version=1") && $0.contains("cause=\(cause)") }
        }
    }

    @Test("GET /v1/status, /v1/models and /metrics answer while a rollback reloads a retired version that takes 10 s; the rollback then completes")
    func controlAnswersDuringRollbackReload() throws {
        let retired = try Retired(delay: 10)
        defer { #expect(terminate(retired.process, timeout: 20)) }
        let (rollback, output) = try retired.startRollback()
        #expect(waitFor(timeout: 30) { retired.loadStarted("rollback") }, "\(CrashPointTests.text(retired.setup.log).suffix(2000))")
        // The order that matters: these answers come while the rollback still waits for its load.
        let client = try HTTPTestClient(unixPath: retired.setup.socket)
        let status = try client.json("GET", "/v1/status")
        let models = try client.send("GET", "/v1/models")
        let metrics = try client.send("GET", "/metrics")
        let health = try client.send("GET", "/v2/health/ready")
        #expect(rollback.isRunning, "the rollback finished before the control plane was asked: the test proves nothing")
        #expect(status.0 == 200 && models.status == 200 && metrics.status == 200 && health.status == 200)
        #expect(String(decoding: metrics.body, as: UTF8.self).contains("registryd_production_version{model=\"digits\"} 2"))
        #expect(retired.setup.state(1) == "retired", "nothing is recorded before the load ends")
        rollback.waitUntilExit()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(rollback.terminationStatus == 0, "\(said)")
        #expect(said.contains("rolled back to version 1 (was 2); version 1 was not loaded and was loaded first"), "\(said)")
        #expect(retired.setup.state(1) == "live")
    }

    @Test("SIGTERM while a rollback reloads a version for a minute: the rollback is answered, and the daemon exits 0 within the 10 s stop deadline; production is unchanged")
    func sigtermDuringRollbackReload() throws {
        let retired = try Retired(delay: 60)
        let (rollback, output) = try retired.startRollback()
        #expect(waitFor(timeout: 30) { retired.loadStarted("rollback") }, "\(CrashPointTests.text(retired.setup.log).suffix(2000))")
        let signalled = Date()
        #expect(terminate(retired.process, timeout: 30), "the daemon still runs 30 s after SIGTERM")
        #expect(retired.process.terminationReason == .exit && retired.process.terminationStatus == 0)
        #expect(Date().timeIntervalSince(signalled) < 15, "it waited \(Date().timeIntervalSince(signalled)) s: more than the stop deadline")
        rollback.waitUntilExit()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(rollback.terminationStatus != 0, "\(said)")
        #expect(said.contains("registryd is stopping"), "the rollback's client is told why: \(said)")
        #expect(retired.setup.state(2) == "live" && retired.setup.state(1) == "retired")
    }

    /// A daemon restarted over digits version 1 (live) with its loads slowed by `delay` seconds,
    /// returned once the restore's load has begun.
    static func restoringSlowly(delay: Double) throws -> (CrashPointTests.Setup, Process) {
        let setup = try CrashPointTests.Setup()
        let slow = "\(setup.dir.path)/slow-loads"
        try dropAtomically(root: setup.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        let first = try setup.launch(killAt: nil)
        #expect(waitFor(timeout: 30) { setup.state(1) == "live" })
        #expect(terminate(first, timeout: 20) && first.terminationStatus == 0)
        FileManager.default.createFile(atPath: slow, contents: nil)
        let process = try setup.launch(killAt: nil, loadDelay: delay, environment: ["REGISTRYD_FAULT_LOAD_DELAY_WHILE": slow], waitForReady: false)
        #expect(waitFor(timeout: 30) {
            CrashPointTests.text(setup.log).split(separator: "\n").contains { $0.contains("load started") && $0.contains("cause=restore") }
        }, "\(CrashPointTests.text(setup.log).suffix(2000))")
        return (setup, process)
    }

    @Test("the startup restore of a slow version: health, the control API and /metrics answer while it loads; ready says 503 until it is loaded")
    func controlAnswersDuringRestore() throws {
        let (setup, process) = try Self.restoringSlowly(delay: 10)
        defer { #expect(terminate(process, timeout: 20)) }
        let client = try HTTPTestClient(unixPath: setup.socket)
        let live = try client.send("GET", "/v2/health/live")
        let ready = try client.send("GET", "/v2/health/ready")
        let status = try client.json("GET", "/v1/status")
        let metrics = try client.send("GET", "/metrics")
        #expect(!CrashPointTests.text(setup.log).contains("registryd ready"), "the restore ended before the endpoints were asked: the test proves nothing")
        #expect(live.status == 200 && ready.status == 503 && status.0 == 200 && metrics.status == 200)
        #expect(waitFor(timeout: 30) { CrashPointTests.text(setup.log).contains("registryd ready") })
        #expect(try client.send("GET", "/v2/health/ready").status == 200)
        #expect(setup.state(1) == "live")
    }

    @Test("bytes swapped under a version while the startup restore loads it (after its hash) are never served: the load is refused, the version checked again and quarantined")
    func swappedDuringRestoreLoad() throws {
        let (setup, process) = try Self.restoringSlowly(delay: 5)
        defer { #expect(terminate(process, timeout: 20)) }
        // The hash passed and the load began: now other weights are renamed over the file.
        let staged = "\(setup.root)/digits/.other.onnx"
        try modelBytes("digits_mlp.onnx").write(to: URL(fileURLWithPath: staged))
        #expect(rename(staged, "\(setup.root)/digits/1/model.onnx") == 0)
        #expect(waitFor(timeout: 40) { setup.state(1) == "quarantined" }, "\(CrashPointTests.text(setup.log).suffix(2000))")
        let log = CrashPointTests.text(setup.log)
        #expect(log.contains("artifact changed between its check and its load; not loaded"), "\(log.suffix(2000))")
        let client = try HTTPTestClient(unixPath: setup.socket)
        let body = #"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,64],"data":[\#(Array(repeating: "0", count: 64).joined(separator: ","))]}]}"#
        let answer = try client.send("POST", "/v2/models/digits/infer", body: Array(body.utf8))
        #expect(answer.status == 503, "nothing serves the model: \(String(decoding: answer.body, as: UTF8.self))")
    }
}
