import Foundation
import Glibc
import Synchronization
import Testing
@testable import Registry

/// kill -9 at exactly the moment a command commits, or just before: the real daemon kills itself
/// at a named point (`REGISTRYD_FAULT_KILL_AT`, ``FaultInjection``). After each crash the
/// catalog must hold the whole command or none of it (alias, split, rollout step, version
/// states and their events), and a restarted daemon must serve what the catalog says.
@Suite("Faults: kill -9 at a command's commit", .serialized)
struct CrashPointTests {
    static let daemon = "\(repositoryRoot)/.build/debug/registryd"
    static let ctl = "\(repositoryRoot)/.build/debug/registryctl"

    final class Setup {
        let dir = TempDirectory()
        var config: String { "\(dir.path)/registry.d" }
        var root: String { "\(dir.path)/models" }
        var socket: String { "\(dir.path)/s.sock" }
        var log: String { "\(dir.path)/registryd.log" }

        let catalogPath: String

        init(catalogDirectory: String? = nil, extraConfig: String = "") throws {
            catalogPath = "\(catalogDirectory ?? dir.path)/catalog.sqlite"
            try FileManager.default.createDirectory(atPath: "\(config)/models", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: "\(root)/digits", withIntermediateDirectories: true)
            try Data(#"{"model_root": "../models", "database": "\#(catalogPath)", "control_socket": "../s.sock", "settle_seconds": 0.2, "log_level": "debug"\#(extraConfig)}"#.utf8)
                .write(to: URL(fileURLWithPath: "\(config)/registryd.json"))
            try Data(#"{"on_new_version": "ready", "keep_previous": 2}"#.utf8).write(to: URL(fileURLWithPath: "\(config)/models/digits.json"))
        }

        func launch(killAt point: String?, loadDelay: Double? = nil, environment extra: [String: String] = [:], waitForReady: Bool = true) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CrashPointTests.daemon)
            process.arguments = ["--config", config]
            var environment = ProcessInfo.processInfo.environment
            environment["REGISTRYD_FAULT_KILL_AT"] = point
            environment["REGISTRYD_FAULT_LOAD_DELAY"] = loadDelay.map { String($0) }
            environment.merge(extra) { $1 }
            process.environment = environment
            FileManager.default.createFile(atPath: log, contents: nil)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
            if waitForReady {
                #expect(waitFor(timeout: 30) { FileManager.default.fileExists(atPath: socket) && text(log).contains("registryd ready") }, "\(text(log))")
            }
            return process
        }

        func ctl(_ arguments: String...) throws -> (status: Int32, output: String) {
            try run([CrashPointTests.ctl, "--socket", socket] + arguments)
        }

        func state(_ version: Int) -> String? { try? Catalog.peekState(catalogPath, "digits", version) }
    }

    static func text(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }

    /// What the catalog holds after the crash.
    struct Recorded {
        var production: Int?
        var split: [Int: Int]?
        var rollout: RolloutRecord?
        var events: [Event]
    }

    static func recorded(_ setup: Setup) throws -> Recorded {
        let catalog = try Catalog(path: setup.catalogPath)
        defer { catalog.close() }
        #expect(try catalog.integrityCheck() == "ok")
        let chain = try catalog.verifyChain()
        #expect(chain.isIntact, "\(chain.problems)")
        return Recorded(production: try catalog.aliases(model: "digits")["production"],
                        split: try catalog.routes()["digits"].flatMap(RouteSpec.parse)?.split,
                        rollout: try catalog.latestRollouts().first { $0.model == "digits" },
                        events: try catalog.events(limit: 10_000))
    }

    /// Waits for the daemon to die by its own SIGKILL.
    static func expectKilled(_ process: Process, _ setup: Setup) {
        #expect(waitFor(timeout: 30) { !process.isRunning }, "the daemon did not reach the kill point: \(text(setup.log).suffix(2000))")
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL)
    }

    /// Restarts the daemon unarmed and checks that every answer comes from a version the
    /// catalog routes to.
    static func expectServes(_ setup: Setup, from allowed: Set<Int>) throws {
        let process = try setup.launch(killAt: nil)
        defer { #expect(terminate(process, timeout: 15) && process.terminationStatus == 0) }
        let client = try HTTPTestClient(unixPath: setup.socket)
        var served: Set<Int> = []
        for i in 0..<40 {
            let response = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(try digitsRow(i).0).utf8))
            #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
            if let version = servedVersion(of: response) { served.insert(version) }
        }
        #expect(!served.isEmpty && served.isSubset(of: allowed), "served \(served.sorted()), the catalog routes to \(allowed.sorted())")
    }

    /// Versions 1 (production) and 2 (ready), with distinct bytes.
    static func twoVersions(_ setup: Setup, second: String = "digits_logreg.onnx") throws {
        try dropAtomically(root: setup.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx", variant: 1))
        #expect(waitFor { setup.state(1) == "live" })
        try dropAtomically(root: setup.root, model: "digits", version: 2, bytes: modelBytes(second, variant: 2))
        #expect(waitFor { setup.state(2) == "ready" })
    }

    @Test("promote and rollback: a crash before the commit leaves the old production, split and states; after it, the new; never a mix",
          arguments: ["promote.before-commit", "promote.after-commit", "rollback.before-commit", "rollback.after-commit"])
    func promotion(point: String) throws {
        let setup = try Setup()
        let command = String(point.prefix { $0 != "." })
        let committed = point.hasSuffix("after-commit")
        let process = try setup.launch(killAt: point)
        try CrashPointTests.twoVersions(setup)
        if command == "rollback" {
            #expect(try setup.ctl("promote", "digits", "2").status == 0)
        }
        // A split in force: the command ends it, moves production and changes two states.
        #expect(try setup.ctl("split", "digits", "1=50", "2=50").status == 0)
        let before = try CrashPointTests.recorded(setup)

        let answer = try command == "promote" ? setup.ctl("promote", "digits", "2") : setup.ctl("rollback", "digits")
        #expect(answer.status != 0, "the command's connection dies with the daemon: \(answer.output)")
        CrashPointTests.expectKilled(process, setup)

        let after = try CrashPointTests.recorded(setup)
        let (old, new) = command == "promote" ? (1, 2) : (2, 1)
        if committed {
            #expect(after.production == new && after.split == nil)
            #expect(setup.state(new) == "live" && setup.state(old) == "ready")
            let added = after.events.dropFirst(before.events.count).map(\.draft.action)
            #expect(added.contains("split") && added.contains(command), "\(added)")
            try CrashPointTests.expectServes(setup, from: [new])
        } else {
            #expect(after.production == old && after.split == [1: 50, 2: 50])
            #expect(setup.state(old) == "live" && setup.state(new) == "ready")
            #expect(after.events.count == before.events.count, "no event of the uncommitted \(command)")
            try CrashPointTests.expectServes(setup, from: [1, 2])
        }
    }

    @Test("rollout steps: a crash before or after a step, a promotion or a rollback leaves the rollout, its split and production in agreement",
          arguments: ["rollout-advance.before-commit", "rollout-advance.after-commit", "rollout-promote.before-commit",
                      "rollout-promote.after-commit", "rollout-rollback.before-commit", "rollout-rollback.after-commit"])
    func rolloutStep(point: String) throws {
        let setup = try Setup()
        let rollback = point.hasPrefix("rollout-rollback")
        let committed = point.hasSuffix("after-commit")
        let process = try setup.launch(killAt: point)
        // The canary fails every request whose feature 0 is out of range; the traffic sends one in five.
        try CrashPointTests.twoVersions(setup, second: rollback ? "digits_faulty.onnx" : "digits_logreg.onnx")
        let start = try setup.ctl("rollout", "start", "digits", "2", "--steps", "50,100", "--interval", "1s", "--min-requests", "5",
                                  "--max-error-rate", "0.01", "--max-latency-ratio", "1000")
        #expect(start.status == 0, "\(start.output)")

        let stop = StopFlag()
        let traffic = Thread { [socket = setup.socket] in
            guard let client = try? HTTPTestClient(unixPath: socket) else { return }
            var i = 0
            while !stop.value.load(ordering: .relaxed) {
                var features = (try? digitsRow(i % 50).0) ?? []
                if i % 5 == 4 { features[0] = 100 }
                guard (try? client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(features).utf8))) != nil else { return }
                i += 1
            }
        }
        traffic.start()
        CrashPointTests.expectKilled(process, setup)
        stop.value.store(true, ordering: .relaxed)

        let after = try CrashPointTests.recorded(setup)
        let rollout = try #require(after.rollout)
        let steps = [50, 100]
        // The split the rollout's record implies, and production.
        switch rollout.state {
        case .running:
            let percent = steps[rollout.step]
            #expect(after.split == (percent == 100 ? [2: 100] : [1: 100 - percent, 2: percent]), "step \(rollout.step + 1): split \(String(describing: after.split))")
            #expect(after.production == 1)
        case .promoted:
            #expect(after.split == nil && after.production == 2)
        case .rolledBack:
            #expect(after.split == nil && after.production == 1)
        case .paused, .aborted:
            Issue.record("unexpected rollout state \(rollout.state)")
        }
        // Exactly where the crash was.
        let expected: (RolloutRecord.State, Int)
        switch (point.split(separator: ".")[0], committed) {
        case ("rollout-advance", false): expected = (.running, 0)
        case ("rollout-advance", true): expected = (.running, 1)
        case ("rollout-promote", false): expected = (.running, 1)
        case ("rollout-promote", true): expected = (.promoted, 1)
        case ("rollout-rollback", false): expected = (.running, 0)
        default: expected = (.rolledBack, 0)
        }
        #expect(rollout.state == expected.0 && rollout.step == expected.1, "\(rollout.state) at step \(rollout.step + 1)")
        let actions = after.events.drop { $0.draft.action != "rollout-start" }.map(\.draft.action)
        #expect(actions.contains("rollout-step") == (point != "rollout-advance.before-commit" && !rollback), "\(actions)")
        #expect(actions.contains("rollout-rollback") == (rollback && committed), "\(actions)")
        #expect(actions.contains("promote") == (point == "rollout-promote.after-commit"), "\(actions)")

        let allowed: Set<Int> = switch rollout.state {
        case .promoted: [2]
        case .rolledBack: [1]
        default: [1, 2]
        }
        try CrashPointTests.expectServes(setup, from: allowed)
    }
}

/// The catalog's disk fills up (a real tmpfs, filled to the last byte) just before a promotion.
@Suite("Faults: the catalog's disk full", .serialized)
struct DiskFullTests {
    @Test("a promotion on a full disk is refused whole with a message that says so; serving and memory stay as they were; it succeeds once space is freed")
    func promotionOnFullDisk() throws {
        let mountPoint = TempDirectory()
        let mounted = try run(["/bin/mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "registryd-test", mountPoint.path])
        try #require(mounted.status == 0, "mounting a tmpfs (the tests run as root): \(mounted.output)")
        defer { _ = try? run(["/bin/umount", "-l", mountPoint.path]) }
        let setup = try CrashPointTests.Setup(catalogDirectory: mountPoint.path)
        let process = try setup.launch(killAt: nil)
        defer { #expect(terminate(process, timeout: 15) && process.terminationStatus == 0) }
        try CrashPointTests.twoVersions(setup)
        #expect(try setup.ctl("split", "digits", "1=50", "2=50").status == 0)
        let before = try CrashPointTests.recorded(setup)

        // Fold the write-ahead log into the database and empty it, so the next commit must grow
        // a file; then fill the disk.
        let checkpoint = try run(["/usr/bin/sqlite3", setup.catalogPath, "PRAGMA wal_checkpoint(TRUNCATE);"])
        #expect(checkpoint.status == 0, "\(checkpoint.output)")
        let filler = "\(mountPoint.path)/filler"
        let fd = open(filler, O_WRONLY | O_CREAT, 0o600)
        let block = [UInt8](repeating: 0xAB, count: 4096)
        while write(fd, block, block.count) == block.count {}
        #expect(errno == ENOSPC)
        _ = write(fd, block, 1)  // the last partial block
        close(fd)

        let refused = try setup.ctl("promote", "digits", "2")
        #expect(refused.status != 0 && refused.output.contains("disk holding it is full") && refused.output.contains("none of it took effect"), "\(refused.output)")
        #expect(process.isRunning)
        // Nothing changed, in memory or in the catalog; traffic still follows the split.
        let client = try HTTPTestClient(unixPath: setup.socket)
        let (code, model) = try client.json("GET", "/v1/models/digits")
        #expect(code == 200 && model["production"] as? Int == 1, "\(model)")
        var served: Set<Int> = []
        for i in 0..<40 {
            let response = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(try digitsRow(i).0).utf8))
            #expect(response.status == 200)
            if let version = servedVersion(of: response) { served.insert(version) }
        }
        #expect(served == [1, 2], "the split still serves both arms: \(served.sorted())")
        let during = try CrashPointTests.recorded(setup)
        #expect(during.production == 1 && during.split == [1: 50, 2: 50] && during.events.count == before.events.count)

        // Space again: the same command goes through whole.
        try FileManager.default.removeItem(atPath: filler)
        let promoted = try setup.ctl("promote", "digits", "2")
        #expect(promoted.status == 0, "\(promoted.output)")
        let after = try CrashPointTests.recorded(setup)
        #expect(after.production == 2 && after.split == nil)
        #expect(setup.state(2) == "live" && setup.state(1) == "ready")
        for i in 0..<10 {
            let response = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(try digitsRow(i).0).utf8))
            #expect(response.status == 200 && servedVersion(of: response) == 2)
        }
    }
}

/// Every load takes 2 s (an injected delay), ten times the settle window.
@Suite("Faults: a load slower than the settle window", .serialized)
struct SlowLoadTests {
    @Test("while a version loads for longer than the settle window, rescans and a newer version do not load it twice or fail it; production serves every request; pinned requests get 503 'loading'")
    func slowLoad() throws {
        let setup = try CrashPointTests.Setup()
        try Data(#"{"on_new_version": "live", "keep_previous": 2}"#.utf8).write(to: URL(fileURLWithPath: "\(setup.config)/models/digits.json"))
        try dropAtomically(root: setup.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx", variant: 1))
        let process = try setup.launch(killAt: nil, loadDelay: 2)
        defer { #expect(terminate(process, timeout: 20) && process.terminationStatus == 0) }
        #expect(waitFor { setup.state(1) == "live" })

        let stop = StopFlag()
        let tally = Mutex((answered: 0, failures: [String]()))
        let traffic = Thread { [socket = setup.socket] in
            guard let client = try? HTTPTestClient(unixPath: socket) else { tally.withLock { $0.failures.append("connect") }; return }
            var i = 0
            while !stop.value.load(ordering: .relaxed) {
                do {
                    let response = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(try digitsRow(i % 50).0).utf8))
                    tally.withLock { response.status == 200 ? $0.answered += 1 : $0.failures.append("\(response.status) \(String(decoding: response.body, as: UTF8.self))") }
                } catch {
                    tally.withLock { $0.failures.append("\(error)") }
                    return
                }
                i += 1
            }
        }
        traffic.start()

        try dropAtomically(root: setup.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx", variant: 2))
        #expect(waitFor { setup.state(2) == "loading" })
        let client = try HTTPTestClient(unixPath: setup.socket)
        let pinned = try client.send("POST", "/v2/models/digits/versions/2/infer", body: Array(digitsBody(try digitsRow(0).0).utf8))
        let pinnedBody = String(decoding: pinned.body, as: UTF8.self)
        #expect(pinned.status == 503 && pinnedBody.contains("loading"), "\(pinned.status) \(pinnedBody)")
        // Rescans and a newer version while it loads.
        for _ in 0..<3 { #expect(try client.send("POST", "/v1/rescan?wait=false").status == 200) }
        try dropAtomically(root: setup.root, model: "digits", version: 3, bytes: modelBytes("digits_logreg.onnx", variant: 3))
        #expect(setup.state(2) == "loading", "still loading after the rescans, not restarted or failed")
        #expect(waitFor(timeout: 30) { setup.state(3) == "live" })
        stop.value.store(true, ordering: .relaxed)
        #expect(waitFor { traffic.isFinished })

        let result = tally.withLock { $0 }
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(result.answered > 0)
        let catalog = try Catalog(path: setup.catalogPath)
        defer { catalog.close() }
        for version in [2, 3] {
            let actions = try catalog.events(model: "digits").filter { $0.draft.version == version }.map(\.draft.action)
            #expect(actions.filter { $0 == "verify" }.count == 1 && actions.filter { $0 == "ready" }.count == 1, "version \(version) loaded once: \(actions)")
            #expect(!actions.contains("fail") && !actions.contains("defer"), "\(actions)")
        }
        #expect(setup.state(2) == "ready", "replaced by version 3 after serving")
        #expect(CrashPointTests.text(setup.log).contains("fault injection armed"))
    }
}

/// Startup loads every servable version before it says ready; with slow loads that takes a while.
@Suite("Faults: a version that arrives during startup", .serialized)
struct StartupArrivalTests {
    @Test("a version dropped while startup's loads are still running is admitted at once, not at the next periodic rescan")
    func arrivalDuringStartup() throws {
        // The periodic rescan is an hour away: only the watcher can find version 2 in time.
        let setup = try CrashPointTests.Setup(extraConfig: #", "rescan_interval_seconds": 3600"#)
        try dropAtomically(root: setup.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx", variant: 1))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CrashPointTests.daemon)
        process.arguments = ["--config", setup.config]
        process.environment = ProcessInfo.processInfo.environment.merging(["REGISTRYD_FAULT_LOAD_DELAY": "2"]) { $1 }
        FileManager.default.createFile(atPath: setup.log, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: setup.log)
        try process.run()
        defer { #expect(terminate(process, timeout: 20) && process.terminationStatus == 0) }
        // Version 1 is loading (2 s): the daemon has not said ready yet.
        #expect(waitFor { setup.state(1) == "loading" })
        #expect(!CrashPointTests.text(setup.log).contains("registryd ready"))
        try dropAtomically(root: setup.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx", variant: 2))
        #expect(waitFor(timeout: 30) { setup.state(2) == "ready" }, "version 2 is \(String(describing: setup.state(2))): \(CrashPointTests.text(setup.log).suffix(2000))")
        #expect(setup.state(1) == "live")
    }
}

@Suite("Faults: SIGTERM during a long model load", .serialized)
struct StopDuringLoadTests {
    @Test("SIGTERM while a version loads for a minute: the daemon exits 0 after waiting 10 s for it, and the next start admits the version")
    func stopDuringLoad() throws {
        let setup = try CrashPointTests.Setup()
        // Every load takes 60 s: none at startup (the directory is empty), then version 1's.
        let process = try setup.launch(killAt: nil, loadDelay: 60)
        try dropAtomically(root: setup.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx", variant: 1))
        #expect(waitFor(timeout: 30) { setup.state(1) == "loading" })
        let signalled = Date()
        // Before this change the stop waited for the load: 60 s.
        #expect(terminate(process, timeout: 40), "the daemon still runs 40 s after SIGTERM, waiting for the load")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        #expect(Date().timeIntervalSince(signalled) >= 9, "it did not wait for the load at all")
        let log = CrashPointTests.text(setup.log)
        #expect(log.contains("stopping without waiting for a model load still running") && log.contains("digits@1"), "\(log.suffix(2000))")
        #expect(setup.state(1) == "loading", "the interrupted load is recorded as such")
        let chain = try CrashPointTests.recorded(setup)
        #expect(!chain.events.isEmpty)

        // Restarted without the delay: version 1 is admitted again and serves.
        let again = try setup.launch(killAt: nil)
        defer { #expect(terminate(again, timeout: 15) && again.terminationStatus == 0) }
        #expect(waitFor(timeout: 30) { setup.state(1) == "live" }, "version 1 is \(String(describing: setup.state(1)))")
        let response = try HTTPTestClient(unixPath: setup.socket).send("POST", "/v2/models/digits/infer", body: Array(digitsBody(try digitsRow(0).0).utf8))
        #expect(response.status == 200 && servedVersion(of: response) == 1, "\(String(decoding: response.body, as: UTF8.self))")
    }
}

/// Many clients connect and then say nothing.
@Suite("Faults: 10,000 idle connections", .serialized)
struct IdleConnectionTests {
    static func residentKiB(_ pid: Int32) -> Int {
        let status = CrashPointTests.text("/proc/\(pid)/status")
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    static func openDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func openConnections(_ client: HTTPTestClient) throws -> Int? {
        let metrics = String(decoding: try client.send("GET", "/metrics").body, as: UTF8.self)
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("registryd_http_connections ") }
        return line.flatMap { Int($0.split(separator: " ")[1]) }
    }

    @Test("10,000 connections opened and left idle (half on the Unix socket, half on TCP) stay open and others are served on both listeners; closed, the daemon returns to its descriptors")
    func tenThousand() throws {
        // Room for 10,000 client descriptors here; the daemon raises its own soft limit to the
        // same hard limit.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        #expect(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
        try #require(limit.rlim_max >= 10_200, "the open-file hard limit is \(limit.rlim_max); this test needs 10,200 descriptors per process")
        let port = IdleConnectionTests.freePort()
        let setup = try CrashPointTests.Setup(extraConfig: #", "listen": "127.0.0.1:\#(port)", "max_connections": 12000, "request_timeout_seconds": 600, "idle_timeout_seconds": 600"#)
        try dropAtomically(root: setup.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx", variant: 1))
        let process = try setup.launch(killAt: nil)
        defer { #expect(terminate(process, timeout: 20) && process.terminationStatus == 0) }
        #expect(waitFor { setup.state(1) == "live" })
        let pid = process.processIdentifier
        let observer = try HTTPTestClient(unixPath: setup.socket)
        #expect(try observer.send("GET", "/v2/health/ready").status == 200)
        let residentBefore = IdleConnectionTests.residentKiB(pid)
        let descriptorsBefore = IdleConnectionTests.openDescriptors(pid)

        var unix: [Int32] = []
        var tcp: [HTTPTestClient] = []
        defer { unix.forEach { close($0) } }
        for _ in 0..<5_000 {
            unix.append(try rawUnixConnect(setup.socket))
            tcp.append(try HTTPTestClient(tcpPort: port))
        }
        #expect(waitFor(timeout: 60) { ((try? IdleConnectionTests.openConnections(observer)) ?? 0) >= 10_001 })
        let residentWith = IdleConnectionTests.residentKiB(pid)
        #expect(IdleConnectionTests.openDescriptors(pid) >= descriptorsBefore + 10_000)

        // Others are still served, on both listeners, on new connections and on an old one.
        for i in 0..<20 {
            let body = Array(digitsBody(try digitsRow(i).0).utf8)
            #expect(try HTTPTestClient(unixPath: setup.socket).send("POST", "/v2/models/digits/infer", body: body).status == 200)
            #expect(try HTTPTestClient(tcpPort: port).send("POST", "/v2/models/digits/infer", body: body).status == 200)
        }
        #expect(try tcp[1234].send("POST", "/v2/models/digits/infer", body: Array(digitsBody(try digitsRow(0).0).utf8)).status == 200)
        let growth = Double(residentWith - residentBefore) / 1024
        print("10,000 idle connections: resident memory \(residentBefore / 1024) MiB -> \(residentWith / 1024) MiB (+\(String(format: "%.1f", growth)) MiB, \(String(format: "%.1f", growth * 1024 / 10_000)) KiB each)")
        #expect(growth < 400, "idle connections cost \(growth) MiB")

        unix.forEach { close($0) }
        unix.removeAll()
        tcp.removeAll()
        #expect(waitFor(timeout: 30) { ((try? IdleConnectionTests.openConnections(observer)) ?? -1) <= 1 })
        #expect(waitFor(timeout: 10) { IdleConnectionTests.openDescriptors(pid) <= descriptorsBefore + 2 }, "descriptors: \(descriptorsBefore) before, \(IdleConnectionTests.openDescriptors(pid)) after")
        #expect(try observer.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(try digitsRow(0).0).utf8)).status == 200)
    }
}

final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}
