import Foundation
import Testing
import Glibc
import Registry
import Runtime

/// The repository, found from this file.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
let fixtures = "\(repositoryRoot)/Tests/Fixtures/models"

/// A temporary directory of its own per test, removed at the end.
final class TempDirectory {
    let path: String
    init() {
        var template = Array("/tmp/rgd-XXXXXX".utf8CString)
        path = String(cString: mkdtemp(&template)!)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Bytes of a fixture model, optionally made distinct by appending an unknown protobuf field
/// (ONNX Runtime's parser skips unknown fields), so that many versions have different SHA-256
/// but the same behaviour.
func modelBytes(_ fixture: String, variant: Int? = nil) -> Data {
    var data = FileManager.default.contents(atPath: "\(fixtures)/\(fixture)")!
    if let variant {
        // Field 1000, wire type 0 (varint): tag 8000 = 0xC0 0x3E, then the variant as a varint.
        data.append(contentsOf: [0xC0, 0x3E])
        var v = UInt64(variant)
        repeat {
            var byte = UInt8(v & 0x7F)
            v >>= 7
            if v != 0 { byte |= 0x80 }
            data.append(byte)
        } while v != 0
    }
    return data
}

/// Writes a version the way a careful deployer does: into a hidden staging directory, then one
/// rename into place.
func dropAtomically(root: String, model: String, version: Int, bytes: Data, manifest: String? = nil, extraFiles: [String: Data] = [:]) throws {
    let staging = "\(root)/\(model)/.staging-\(version)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
    try bytes.write(to: URL(fileURLWithPath: "\(staging)/model.onnx"))
    if let manifest { try Data(manifest.utf8).write(to: URL(fileURLWithPath: "\(staging)/manifest.json")) }
    for (name, data) in extraFiles { try data.write(to: URL(fileURLWithPath: "\(staging)/\(name)")) }
    guard rename(staging, "\(root)/\(model)/\(version)") == 0 else {
        throw RegistryError(.system, "rename failed: \(String(cString: strerror(errno)))")
    }
}

/// A registry in a temp directory: model root, catalog, and a daemon started in-process.
final class TestRegistry {
    let temp = TempDirectory()
    var root: String { "\(temp.path)/models" }
    var database: String { "\(temp.path)/catalog.sqlite" }
    var config: DaemonConfig
    var daemon: Daemon?
    let lines = LogLines()

    init(settle: Double = 0.3, rescan: Double = 30, policies: [String: ModelPolicy] = [:], trustedKeys: [String: String] = [:]) {
        config = DaemonConfig(modelRoot: "", database: "")
        try? FileManager.default.createDirectory(atPath: "\(temp.path)/models", withIntermediateDirectories: true)
        config = DaemonConfig(modelRoot: root, database: database, controlSocket: "\(temp.path)/s.sock",
                              logLevel: .debug, settleSeconds: settle, rescanIntervalSeconds: rescan,
                              trustedKeys: trustedKeys, policies: policies)
    }

    func makeModelDirectory(_ model: String) throws {
        try FileManager.default.createDirectory(atPath: "\(root)/\(model)", withIntermediateDirectories: true)
    }

    @discardableResult
    func start(watcher: (any DirectoryWatcher)? = InotifyWatcher(), clock: any RegistryClock = SystemClock()) throws -> Daemon {
        let sink = lines
        let daemon = try Daemon(config: config, log: Log(level: .debug, sink: { sink.append($0) }), clock: clock, watcher: watcher)
        try daemon.start()
        self.daemon = daemon
        return daemon
    }

    func stop() {
        daemon?.stop()
        daemon = nil
    }

    deinit { stop() }

    func record(_ model: String, _ version: Int) -> VersionRecord? {
        daemon?.lifecycle.status().first { $0.name == model }?.versions.first { $0.version == version }
    }

    /// Polls until `condition` holds or `timeout` passes; returns the seconds it took, or nil.
    @discardableResult
    func wait(timeout: Double = 20, _ condition: () -> Bool) -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if condition() { return Date().timeIntervalSince(start) }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return nil
    }

    func waitForState(_ model: String, _ version: Int, _ states: Set<VersionState>, timeout: Double = 20) -> Double? {
        wait(timeout: timeout) { record(model, version).map { states.contains($0.state) } ?? false }
    }
}

extension TestRegistry {
    /// A running registry with digits version 1 (logistic regression, production) and version 2
    /// (MLP, ready), under a policy that keeps new versions ready.
    static func digitsOneAndTwo() throws -> TestRegistry {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .ready, keepPrevious: 2, requireSignature: false)])
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
        try registry.start()
        #expect(registry.waitForState("digits", 2, [.ready]) != nil)
        return registry
    }
}

/// Log lines captured from a daemon, for assertions on what it said.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

/// A watcher that never reports anything: every inotify event "missed".
final class DeafWatcher: DirectoryWatcher {
    func start(root: String, onEvent: @escaping @Sendable (WatchEvent) -> Void) throws(RegistryError) {}
    func stop() {}
}

/// A watcher the test drives by hand.
final class ManualWatcher: DirectoryWatcher {
    private let handler = Mutex<(@Sendable (WatchEvent) -> Void)?>(nil)
    func start(root: String, onEvent: @escaping @Sendable (WatchEvent) -> Void) throws(RegistryError) {
        handler.withLock { $0 = onEvent }
    }
    func stop() { handler.withLock { $0 = nil } }
    func send(_ event: WatchEvent) { handler.withLock { $0 }?(event) }
}

/// One digits row from the test split.
func digitsRow(_ index: Int = 0) throws -> ([Float], Int64, Int64) {
    let data = FileManager.default.contents(atPath: "\(fixtures)/digits_test.json")!
    let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    let features = (object["features"] as! [[Double]])[index].map(Float.init)
    let logreg = (object["logreg_predictions"] as! [NSNumber])[index].int64Value
    let mlp = (object["mlp_predictions"] as! [NSNumber])[index].int64Value
    return (features, logreg, mlp)
}

import Synchronization

/// Runs a command to completion; returns its exit status and its stdout and stderr together.
func run(_ command: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
    let (status, out, err) = try runSeparately(command, environment: environment)
    return (status, out + err)
}

/// Runs a command to completion; returns its exit status, stdout and stderr.
func runSeparately(_ command: [String], environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: command[0])
    process.arguments = Array(command.dropFirst())
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read stderr on another thread so that neither pipe can fill and block the child.
    let errData = Mutex<Data>(Data())
    let reader = Thread { errData.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() } }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while reader.isExecuting || !reader.isFinished { usleep(1000) }
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData.withLock { $0 }, as: UTF8.self))
}

/// Runs a command with `input` on its stdin; returns its exit status and output.
func runWithInput(_ command: [String], input: [UInt8]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: command[0])
    process.arguments = Array(command.dropFirst())
    let stdin = Pipe(), out = Pipe()
    process.standardInput = stdin
    process.standardOutput = out
    process.standardError = out
    try process.run()
    stdin.fileHandleForWriting.write(Data(input))
    try stdin.fileHandleForWriting.close()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Time that tests move by hand: the wall clock plus an offset that `advance` grows, so that
/// settle windows still pass on their own while rollout intervals pass in an instant.
final class ManualClock: RegistryClock {
    private let offset = Mutex<Double>(0)
    func now() -> Double { Date().timeIntervalSince1970 + offset.withLock { $0 } }
    func advance(by seconds: Double) { offset.withLock { $0 += seconds } }
}

/// A clock that moves only when told: for tests where a minute boundary must not fall at random.
final class FixedClock: RegistryClock {
    private let time: Mutex<Double>
    init(_ start: Double) { time = Mutex(start) }
    func now() -> Double { time.withLock { $0 } }
    func advance(by seconds: Double) { time.withLock { $0 += seconds } }
}

/// Polls `condition` every 20 ms until it holds (true) or `timeout` seconds pass (false).
func waitFor(timeout: Double = 20, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return false
}

/// Sends SIGTERM to a daemon process and waits up to `timeout` seconds; kills it and returns
/// false if it does not exit, so that a daemon that ignores SIGTERM fails the test instead of
/// hanging it.
func terminate(_ process: Process, timeout: Double = 10) -> Bool {
    kill(process.processIdentifier, SIGTERM)
    if waitFor(timeout: timeout, { !process.isRunning }) { process.waitUntilExit(); return true }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    return false
}
