import Foundation
import Glibc
import Synchronization
import Testing
@testable import Registry

/// registryd as a service: `make install` into a staging root, the systemd unit, the notify
/// protocol, SIGHUP reloads, SIGTERM under load and JSON logs, each on the real executable.
@Suite("service: install, systemd, signals", .serialized)
struct ServiceTests {
    static let daemon = "\(repositoryRoot)/.build/debug/registryd"
    static let ctl = "\(repositoryRoot)/.build/debug/registryctl"

    /// A registry.d in `dir` serving digits version 1 (`digits_logreg`), plus its paths.
    private func setUp(_ dir: TempDirectory, policy: String = #"{"on_new_version": "ready", "keep_previous": 1}"#,
                       extra: String = "") throws -> (config: String, socket: String, catalog: String) {
        let config = "\(dir.path)/registry.d"
        try FileManager.default.createDirectory(atPath: "\(config)/models", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(dir.path)/models/digits", withIntermediateDirectories: true)
        try Data(#"{"model_root": "../models", "database": "../catalog.sqlite", "control_socket": "../s.sock", "settle_seconds": 0.2, "stats_flush_seconds": 0.5\#(extra)}"#.utf8)
            .write(to: URL(fileURLWithPath: "\(config)/registryd.json"))
        try Data(policy.utf8).write(to: URL(fileURLWithPath: "\(config)/models/digits.json"))
        try dropAtomically(root: "\(dir.path)/models", model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        return (config, "\(dir.path)/s.sock", "\(dir.path)/catalog.sqlite")
    }

    /// Starts registryd with its stderr in `log` (a file) and `environment` added.
    private func launch(_ arguments: [String], log: String, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServiceTests.daemon)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        return process
    }

    private func text(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }

    // MARK: Install

    @Test("make install into a temporary DESTDIR stages the expected tree, keeps an existing registry.d, and the unit passes systemd-analyze verify")
    func install() throws {
        let dir = TempDirectory()
        let root = "\(dir.path)/root"
        // The binaries this test run built (CONFIGURATION=debug); `make` builds release ones.
        let make = try run(["/usr/bin/make", "-C", repositoryRoot, "install", "DESTDIR=\(root)", "CONFIGURATION=debug"])
        #expect(make.status == 0, "\(make.output)")
        let expected = [
            "usr/local/bin/registryd", "usr/local/bin/registryctl",
            "usr/local/lib/systemd/system/registryd.service",
            "usr/local/lib/sysusers.d/registryd.conf", "usr/local/lib/tmpfiles.d/registryd.conf",
            "usr/local/share/doc/registryd/OPERATIONS.md", "usr/local/share/doc/registryd/API.md",
            "usr/local/share/doc/registryd/README.md", "usr/local/share/doc/registryd/registry.d.md",
            "etc/registry.d/registryd.json", "etc/registry.d/README.md", "etc/registry.d/models",
            "var/lib/registryd", "var/lib/registryd/models",
        ]
        for path in expected {
            #expect(FileManager.default.fileExists(atPath: "\(root)/\(path)"), "missing \(path)")
        }
        #expect(access("\(root)/usr/local/bin/registryd", X_OK) == 0)
        let unit = text("\(root)/usr/local/lib/systemd/system/registryd.service")
        for line in ["Type=notify", "ExecStart=/usr/local/bin/registryd --config /etc/registry.d", "ExecReload=/bin/kill -HUP $MAINPID",
                     "User=registryd", "RuntimeDirectory=registryd", "StateDirectory=registryd"] {
            #expect(unit.contains(line + "\n"), "unit lacks '\(line)'")
        }
        #expect(!unit.contains("@"), "unsubstituted placeholder in the unit")
        // The installed configuration is valid as it stands.
        let installed = "\(root)/etc/registry.d"
        let check = try run([ServiceTests.daemon, "--check-config", "--config", installed])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("model root /var/lib/registryd/models, catalog /var/lib/registryd/registry.sqlite"), "\(check.output)")

        // An operator's edit survives a second install.
        let edited = #"{"model_root": "/srv/models", "log_level": "debug"}"#
        try Data(edited.utf8).write(to: URL(fileURLWithPath: "\(installed)/registryd.json"))
        let again = try run(["/usr/bin/make", "-C", repositoryRoot, "install", "DESTDIR=\(root)", "CONFIGURATION=debug"])
        #expect(again.status == 0 && again.output.contains("keeping the existing"), "\(again.output)")
        #expect(text("\(installed)/registryd.json") == edited)

        // systemd-analyze checks the unit as installed, its binary paths mapped into the staging
        // root (so that it can check they are executable). It prints problems and may still exit
        // 0, so the test wants both a zero status and no output.
        let mapped = "\(dir.path)/registryd.service"
        try Data(unit.replacingOccurrences(of: "/usr/local/bin/", with: "\(root)/usr/local/bin/").utf8).write(to: URL(fileURLWithPath: mapped))
        let verify = try run(["/usr/bin/systemd-analyze", "verify", mapped])
        #expect(verify.status == 0 && verify.output.isEmpty, "systemd-analyze verify: \(verify.output)")
        // And it does catch a broken unit.
        let broken = "\(dir.path)/broken/registryd.service"
        try FileManager.default.createDirectory(atPath: "\(dir.path)/broken", withIntermediateDirectories: true)
        try Data(unit.replacingOccurrences(of: "Type=notify", with: "Type=notfy").utf8).write(to: URL(fileURLWithPath: broken))
        let refused = try run(["/usr/bin/systemd-analyze", "verify", broken])
        #expect(refused.output.contains("Type") || refused.output.contains("type"), "\(refused.output)")
    }

    // MARK: Notify protocol

    /// A datagram socket standing in for systemd's notify socket.
    final class NotifySocket {
        let fd: Int32
        let path: String

        init(path: String) throws {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard bound == 0 else { throw TestFailure("bind \(path): \(String(cString: strerror(errno)))") }
        }

        deinit { close(fd) }

        /// The next message, or nil after `timeout` seconds.
        func next(timeout: Double = 30) -> String? {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(timeout * 1000)) > 0 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
        }
    }

    @Test("under a notify socket: READY=1 once the models are loaded, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM")
    func notifyProtocol() throws {
        let dir = TempDirectory()
        let (config, socket, _) = try setUp(dir)
        let notify = try NotifySocket(path: "\(dir.path)/notify.sock")
        let process = try launch(["--config", config], log: "\(dir.path)/log", environment: ["NOTIFY_SOCKET": notify.path])
        defer { if process.isRunning { _ = terminate(process, timeout: 15) } }

        let ready = notify.next()
        #expect(ready?.hasPrefix("READY=1\n") == true, "\(ready ?? "nothing")")
        #expect(ready?.contains("MAINPID=\(process.processIdentifier)") == true)
        #expect(ready?.contains("STATUS=digits@1(live)") == true, "\(ready ?? "")")
        // READY means serving: the model answers at once.
        let client = try HTTPTestClient(unixPath: socket)
        let answer = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(try digitsRow(0).0).utf8))
        #expect(answer.status == 200)

        kill(process.processIdentifier, SIGHUP)
        let reloading = notify.next()
        #expect(reloading?.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") == true, "\(reloading ?? "nothing")")
        #expect(notify.next()?.hasPrefix("READY=1") == true)

        kill(process.processIdentifier, SIGTERM)
        let stopping = notify.next()
        #expect(stopping?.hasPrefix("STOPPING=1") == true, "\(stopping ?? "nothing")")
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)

        // The abstract namespace (`@name`) is addressed too.
        let name = "registryd-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let abstract = socket_abstract(name)
        defer { close(abstract) }
        #expect(ServiceNotifier(environment: ["NOTIFY_SOCKET": "@" + name]).notify("READY=1"))
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { recv(abstract, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        #expect(n == 7 && String(decoding: buffer[0..<max(0, n)], as: UTF8.self) == "READY=1")
        #expect(!ServiceNotifier(environment: [:]).notify("READY=1"), "without NOTIFY_SOCKET nothing is sent")
    }

    private func socket_abstract(_ name: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: [0] + Array(name.utf8)) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + 1 + name.utf8.count)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        return fd
    }

    // MARK: Reload

    @Test("SIGHUP applies an edited policy and log level; a bad edit is refused with the reason and the old configuration stays; both are in the audit trail")
    func reload() throws {
        let dir = TempDirectory()
        let (config, socket, catalogPath) = try setUp(dir)
        let log = "\(dir.path)/log"
        let process = try launch(["--config", config], log: log)
        defer { if process.isRunning { _ = terminate(process, timeout: 15) } }
        #expect(waitFor { (try? Catalog.peekState(catalogPath, "digits", 1)) == "live" && FileManager.default.fileExists(atPath: socket) })
        let ctl = [ServiceTests.ctl, "--socket", socket]

        // 1. A bad edit: refused, named, and the daemon goes on with what it had.
        try Data(#"{"on_new_version": "liev"}"#.utf8).write(to: URL(fileURLWithPath: "\(config)/models/digits.json"))
        kill(process.processIdentifier, SIGHUP)
        #expect(waitFor { text(log).contains("configuration reload refused") })
        let refusal = text(log).split(separator: "\n").first { $0.contains("configuration reload refused") }.map(String.init) ?? ""
        #expect(refusal.contains("digits.json") && refusal.contains("on_new_version") && refusal.contains("liev"), "\(refusal)")
        #expect(process.isRunning)
        // registryctl reload says the same, and fails.
        let viaCtl = try run(ctl + ["reload"])
        #expect(viaCtl.status == 1 && viaCtl.output.contains("configuration reload refused") && viaCtl.output.contains("on_new_version"), "\(viaCtl.output)")
        // The policy in force is still 'ready': a new version does not go live.
        try dropAtomically(root: "\(dir.path)/models", model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
        #expect(waitFor { (try? Catalog.peekState(catalogPath, "digits", 2)) == "ready" })

        // 2. A good edit: hot reload on, log level warning, and a key that needs a restart.
        try Data(#"{"on_new_version": "live", "keep_previous": 2}"#.utf8).write(to: URL(fileURLWithPath: "\(config)/models/digits.json"))
        try Data(#"{"model_root": "../models", "database": "../catalog.sqlite", "control_socket": "../s.sock", "settle_seconds": 0.2, "stats_flush_seconds": 0.5, "log_level": "warning", "max_connections": 99}"#.utf8)
            .write(to: URL(fileURLWithPath: "\(config)/registryd.json"))
        let applied = try run(ctl + ["reload"])
        #expect(applied.status == 0, "\(applied.output)")
        #expect(applied.output.contains("in force now: log_level, models/digits.json"), "\(applied.output)")
        #expect(applied.output.contains("after a restart: max_connections"), "\(applied.output)")
        #expect(waitFor { text(log).contains("configuration keys changed that take effect only after a restart") })
        try dropAtomically(root: "\(dir.path)/models", model: "digits", version: 3, bytes: modelBytes("digits_logreg.onnx", variant: 3))
        #expect(waitFor { (try? Catalog.peekState(catalogPath, "digits", 3)) == "live" }, "the reloaded policy (live) applies to the next version")
        // log_level warning is in force: version 3's notices were not written.
        #expect(!text(log).contains("model.version=3"), "a notice was logged at log_level warning")

        // 3. SIGHUP with the same files: applied, nothing changed.
        kill(process.processIdentifier, SIGHUP)

        // The audit trail has every reload, the refused ones with their reason.
        var reloads: [[String: Any]] = []
        #expect(waitFor {
            let history = (try? run(ctl + ["--json", "history", "--limit", "100"]))?.output ?? ""
            let events = (try? JSONSerialization.jsonObject(with: Data(history.utf8)) as? [[String: Any]]) ?? []
            reloads = events.filter { $0["action"] as? String == "reload" }
            return reloads.count == 4
        })
        #expect(reloads.count == 4, "\(reloads)")
        #expect(reloads.filter { $0["after"] as? String == "refused" }.count == 2)
        #expect(reloads.contains { ($0["actor"] as? String) == "signal SIGHUP" })
        #expect(terminate(process, timeout: 15) && process.terminationStatus == 0)
    }

    @Test("ConfigReload: every configuration key is either applied at once or named as needing a restart")
    func reloadPlan() throws {
        let current = DaemonConfig(modelRoot: "/m", database: "/d")
        var proposed = current
        proposed.logLevel = .debug
        proposed.listen = "127.0.0.1:8080"
        proposed.policies["digits"] = ModelPolicy(onNewVersion: .live, keepPrevious: 1, requireSignature: false)
        proposed.settleSeconds = 5
        let plan = ConfigReload(current: current, proposed: proposed)
        #expect(plan.changed == ["log_level", "settle_seconds", "models/digits.json"])
        #expect(plan.restartRequired == ["listen"])
        #expect(plan.applied.listen == nil, "a key that needs a restart keeps its value in force")
        #expect(plan.applied.logLevel == .debug && plan.applied.settleSeconds == 5)
        #expect(ConfigReload(current: current, proposed: current) == ConfigReload(current: current, proposed: current))
        #expect(ConfigReload(current: current, proposed: current).changed.isEmpty)
        // A new key added to DaemonConfig must be classified: the plan covers every stored property.
        #expect(Mirror(reflecting: current).children.count == 31, "DaemonConfig gained a key: classify it in ConfigReload")
    }

    // MARK: SIGTERM under load

    @Test("SIGTERM under load: every request whose connection was accepted is answered, the process exits 0, the catalog passes integrity_check and counts every answer")
    func sigtermUnderLoad() throws {
        let dir = TempDirectory()
        let (config, socket, catalogPath) = try setUp(dir)
        let process = try launch(["--config", config], log: "\(dir.path)/log")
        defer { if process.isRunning { _ = terminate(process, timeout: 15) } }
        #expect(waitFor { (try? Catalog.peekState(catalogPath, "digits", 1)) == "live" && FileManager.default.fileExists(atPath: socket) })
        let rows = try (0..<16).map { try digitsRow($0) }

        struct Tally { var answered = 0, refused = 0, closedIdle = 0; var failures: [String] = [] }
        let tally = Mutex(Tally())
        let stopping = Atomic<Bool>(false)
        let group = DispatchGroup()
        // Half the clients open a connection per request (as curl does), half keep one open.
        for client in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var index = client
                var connection: HTTPTestClient?
                var usedBefore = false
                while true {
                    index += 1
                    let (features, expected, _) = rows[index % rows.count]
                    let body = Array(digitsBody(features).utf8)
                    let perRequest = client % 2 == 0
                    if connection == nil {
                        do {
                            connection = try HTTPTestClient(unixPath: socket)
                            usedBefore = false
                        } catch {
                            // Refused at connect: never accepted. Expected only once stopping.
                            tally.withLock {
                                if stopping.load(ordering: .acquiring) { $0.refused += 1 } else { $0.failures.append("connect before SIGTERM: \(error)") }
                            }
                            return
                        }
                    }
                    do {
                        let response = try connection!.send("POST", "/v2/models/digits/infer", body: body,
                                                            headers: perRequest ? [("Connection", "close")] : [])
                        guard response.status == 200, label(of: response) == expected else {
                            tally.withLock { $0.failures.append("status \(response.status): \(String(decoding: response.body, as: UTF8.self))") }
                            return
                        }
                        tally.withLock { $0.answered += 1 }
                        if perRequest || response.headers["Connection"]?.lowercased() == "close" { connection = nil } else { usedBefore = true }
                    } catch {
                        // A keep-alive connection closed while idle, before the request was read:
                        // the client retries on a new connection (which is then refused).
                        if !perRequest && usedBefore && stopping.load(ordering: .acquiring) {
                            tally.withLock { $0.closedIdle += 1 }
                            connection = nil
                            continue
                        }
                        tally.withLock { $0.failures.append("after connect (\(perRequest ? "per request" : "keep-alive")): \(error)") }
                        return
                    }
                }
            }
        }
        // Let the load run, then stop the daemon in the middle of it.
        #expect(waitFor(timeout: 30) { tally.withLock { $0.answered } >= 2000 })
        stopping.store(true, ordering: .releasing)
        kill(process.processIdentifier, SIGTERM)
        #expect(group.wait(timeout: .now() + 30) == .success, "clients did not finish")
        #expect(waitFor(timeout: 15) { !process.isRunning })
        process.waitUntilExit()
        let result = tally.withLock { $0 }
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        #expect(result.refused == 8, "every client ends refused at connect once the socket is gone")

        // The catalog is whole, and the final flush counted every answered request.
        let catalog = try Catalog(path: catalogPath)
        defer { catalog.close() }
        #expect(try catalog.integrityCheck() == "ok")
        #expect(try catalog.verifyChain().isIntact)
        let counted = try catalog.stats(model: "digits", sinceMinute: 0).reduce(0) { $0 + $1.series.requests }
        #expect(counted == result.answered, "answered \(result.answered), counted \(counted)")
        print("SIGTERM under load: \(result.answered) answered, \(result.refused) refused at connect, \(result.closedIdle) idle keep-alive closed, 0 failed")
    }

    // MARK: Control socket deleted

    @Test("the control socket deleted while running: the daemon binds it again within seconds, with its mode, and keeps serving")
    func socketDeleted() throws {
        let dir = TempDirectory()
        let (config, socket, _) = try setUp(dir)
        let log = "\(dir.path)/log"
        let process = try launch(["--config", config], log: log)
        defer { if process.isRunning { _ = terminate(process, timeout: 15) } }
        #expect(waitFor { text(log).contains("registryd ready") })
        var before = stat()
        #expect(lstat(socket, &before) == 0)
        #expect(unlink(socket) == 0)
        #expect((try? HTTPTestClient(unixPath: socket)) == nil, "the name is gone")
        #expect(waitFor(timeout: 10) { FileManager.default.fileExists(atPath: socket) }, "not bound again")
        #expect(waitFor { text(log).contains("control socket was deleted; listening on it again") })
        var after = stat()
        #expect(lstat(socket, &after) == 0 && after.st_mode & 0o777 == before.st_mode & 0o777 && after.st_ino != before.st_ino)
        let client = try HTTPTestClient(unixPath: socket)
        let answer = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(try digitsRow(0).0).utf8))
        #expect(answer.status == 200)
        let status = try run([ServiceTests.ctl, "--socket", socket, "status"])
        #expect(status.status == 0 && status.output.contains("digits: production 1"), "\(status.output)")
        // A regular file put in its place is never removed.
        #expect(unlink(socket) == 0)
        FileManager.default.createFile(atPath: socket, contents: Data("not a socket".utf8))
        #expect(waitFor(timeout: 10) { text(log).contains("control socket path taken by another file") })
        #expect(String(decoding: FileManager.default.contents(atPath: socket) ?? Data(), as: UTF8.self) == "not a socket")
        #expect(terminate(process, timeout: 15) && process.terminationStatus == 0)
        #expect(String(decoding: FileManager.default.contents(atPath: socket) ?? Data(), as: UTF8.self) == "not a socket", "stop leaves a foreign file alone")
    }

    // MARK: Logs

    @Test("--log-format json writes one JSON object per line with time, level and message; text is key=value")
    func jsonLogs() throws {
        let dir = TempDirectory()
        let (config, socket, _) = try setUp(dir)
        let log = "\(dir.path)/log"
        let process = try launch(["--config", config, "--log-format", "json"], log: log)
        #expect(waitFor { text(log).contains("registryd ready") && FileManager.default.fileExists(atPath: socket) })
        #expect(terminate(process, timeout: 15) && process.terminationStatus == 0)
        let lines = text(log).split(separator: "\n")
        #expect(lines.count >= 3)
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object?["time"] != nil && object?["level"] != nil && object?["message"] != nil, "not a JSON log line: \(line)")
        }
        #expect(lines.contains { $0.contains(#""message":"version ready""#) && $0.contains(#""model.name":"digits""#) })

        let textLog = "\(dir.path)/text-log"
        let plain = try launch(["--config", config], log: textLog)
        #expect(waitFor { text(textLog).contains("registryd ready") })
        #expect(terminate(plain, timeout: 15))
        #expect(text(textLog).split(separator: "\n").contains { $0.contains(" notice registryd ready ") && $0.contains("control_socket=") })
    }
}
