import Foundation
import Glibc
import Synchronization
import Testing
import Wire
@testable import Registry

/// The HTTP/1.1 server under hostile and heavy clients, through a real daemon's control socket.
@Suite("HTTP server", .serialized)
struct HTTPServerTests {
    func registry(_ configure: (inout DaemonConfig) -> Void = { _ in }) throws -> TestRegistry {
        let registry = TestRegistry()
        configure(&registry.config)
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        return registry
    }

    /// A well-formed prediction still succeeds.
    func expectServing(_ registry: TestRegistry) throws {
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let (features, expected, _) = try digitsRow(0)
        let response = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(features).utf8))
        #expect(response.status == 200)
        #expect(label(of: response) == expected)
    }

    func exchange(_ registry: TestRegistry, _ bytes: String, timeout: Double = 10) throws -> (text: String, closed: Bool) {
        let fd = try rawUnixConnect(registry.config.controlSocket)
        defer { close(fd) }
        try writeAll(fd, Array(bytes.utf8))
        return readUntilClose(fd, timeout: timeout)
    }

    @Test("garbage, an oversized head and bad Content-Lengths get a 4xx JSON error and a closed connection; others keep being served")
    func malformed() throws {
        let registry = try registry()
        let cases: [(String, String)] = [
            ("\u{16}\u{03}\u{01}\u{02}\u{00}GARBAGE\r\n\r\n", "HTTP/1.1 400"),
            ("GET /v2 HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 20_000) + "\r\n\r\n", "HTTP/1.1 431"),
            ("POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "HTTP/1.1 400"),
            ("POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "HTTP/1.1 400"),
            ("POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", "HTTP/1.1 413"),
            ("POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "HTTP/1.1 501"),
            // Content-Length shorter than the body: the rest is read as a next request, which is garbage.
            ("POST /v1/rescan HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}}}}}}\r\n\r\n", "HTTP/1.1 400"),
        ]
        for (request, expected) in cases {
            let (text, closed) = try exchange(registry, request)
            #expect(text.contains(expected), "\(request.prefix(60).debugDescription) -> \(text.prefix(200).debugDescription)")
            #expect(text.contains("{\"error\":"), "\(text.prefix(200))")
            #expect(closed)
        }
        // Content-Length longer than what is sent, then the client goes away: nothing to answer.
        let fd = try rawUnixConnect(registry.config.controlSocket)
        try writeAll(fd, Array("POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"in".utf8))
        shutdown(fd, Int32(SHUT_WR))
        let (text, closed) = readUntilClose(fd)
        close(fd)
        #expect(text.isEmpty && closed)
        try expectServing(registry)
    }

    @Test("busy polling: requests sent at once are read by the polling worker, requests after a pause through epoll, a client gone mid-poll is closed; every answer is right")
    func busyPolling() throws {
        // A budget far above any client's turnaround here, so that hits do not hang on timing.
        let registry = try registry { $0.busyPollMicroseconds = 10_000 }
        let server = registry.daemon!.server
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        // Bodies made first: the client does nothing between an answer and its next request.
        let rows = try (0..<50).map { i in try digitsRow(i) }
        let bodies = rows.map { Array(digitsBody($0.0).utf8) }
        var responses: [HTTPResponse] = []
        for body in bodies {
            responses.append(try client.send("POST", "/v2/models/digits/infer", body: body))
        }
        for (response, row) in zip(responses, rows) {
            #expect(response.status == 200 && label(of: response) == row.1)
        }
        let quick = server.counts
        #expect(quick.busyPollHits > 0, "back-to-back requests never found the worker polling")
        // Pauses longer than the budget: a poll runs out, and the request comes through epoll.
        // 17 of them, since after a poll that ran out the next 15 chances are skipped.
        for i in 0..<17 {
            Thread.sleep(forTimeInterval: 0.02)
            let (features, expected, _) = try digitsRow(i)
            let response = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(features).utf8))
            #expect(response.status == 200 && label(of: response) == expected)
        }
        #expect(server.counts.busyPollMisses > quick.busyPollMisses)
        // A client that closes while its connection is polled: the worker sees end of file.
        let fd = try rawUnixConnect(registry.config.controlSocket)
        try writeAll(fd, Array("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        var byte: UInt8 = 0
        #expect(read(fd, &byte, 1) == 1)
        close(fd)
        #expect(registry.wait { server.counts.connections == 1 } != nil, "the closed connection is dropped; the keep-alive client's stays")
        try expectServing(registry)
        // The counters are exported.
        let metrics = String(decoding: try client.send("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains("registryd_http_busy_polls_total{result=\"hit\"}"))
    }

    @Test("a slow sender is answered 408 and dropped after the request timeout while others are served")
    func slowSender() throws {
        let registry = try registry { $0.requestTimeoutSeconds = 1 }
        let fd = try rawUnixConnect(registry.config.controlSocket)
        defer { close(fd) }
        let started = Date()
        let request = Array("GET /v2/health/live HTTP/1.1\r\nHost: slow\r\n\r\n".utf8)
        var dropped = false
        for byte in request {
            if (try? writeAll(fd, [byte])) == nil { dropped = true; break }
            try expectServing(registry)
            Thread.sleep(forTimeInterval: 0.2)
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 0) > 0 { dropped = true; break }
        }
        let (text, closed) = readUntilClose(fd, timeout: 5)
        let elapsed = Date().timeIntervalSince(started)
        #expect(dropped || closed)
        #expect(text.contains("HTTP/1.1 408"), "\(text)")
        #expect(elapsed < 4, "dropped after \(elapsed) s with a 1 s timeout")
        try expectServing(registry)
    }

    @Test("1,000 idle connections stay open and do not stop others from being served; past the cap a client gets 503")
    func idleConnections() throws {
        let registry = try registry { $0.maxConnections = 1010 }
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        for _ in 0..<1000 { fds.append(try rawUnixConnect(registry.config.controlSocket)) }
        #expect(registry.wait { registry.daemon!.server.counts.connections >= 1000 } != nil)
        for _ in 0..<5 { try expectServing(registry) }
        // Fill up to the cap, then one more.
        while registry.daemon!.server.counts.connections < 1010 { fds.append(try rawUnixConnect(registry.config.controlSocket)) ; Thread.sleep(forTimeInterval: 0.001) }
        let extra = try rawUnixConnect(registry.config.controlSocket)
        let (text, closed) = readUntilClose(extra, timeout: 5)
        close(extra)
        #expect(text.contains("HTTP/1.1 503") && text.contains("too many open connections"), "\(text)")
        #expect(closed)
        // Release some and the daemon serves again.
        for fd in fds.suffix(20) { close(fd) }
        fds.removeLast(20)
        #expect(registry.wait { registry.daemon!.server.counts.connections <= 995 } != nil)
        try expectServing(registry)
    }

    @Test("an idle keep-alive connection is closed after the idle timeout")
    func idleTimeout() throws {
        let registry = try registry { $0.idleTimeoutSeconds = 1 }
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        #expect(try client.send("GET", "/v2/health/live").status == 200)
        let (text, closed) = readUntilClose(client.fd, timeout: 5)
        #expect(text.isEmpty && closed)
    }

    @Test("the server's timeouts follow the clock it is given: a partial request is answered 408 once that clock passes the request timeout, and not before")
    func injectedClock() throws {
        let temp = TempDirectory()
        let clock = HandClock()
        let server = try HTTPServer(configuration: .init(threads: 2, requestTimeout: 5, idleTimeout: 60), log: Log(level: .error), clock: clock) { _, _ in
            HTTPResponse(status: 200)
        }
        let path = temp.path + "/s.sock"
        try server.listenUnix(path: path, mode: 0o600, group: nil)
        server.start()
        defer { server.stop(deadline: 2) }
        let fd = try rawUnixConnect(path)
        defer { close(fd) }
        try writeAll(fd, Array("GET /a HTTP/1.1\r\nHost: x\r\n".utf8))
        // Several reaper ticks (every 0.25 s) with the clock standing still: no answer.
        Thread.sleep(forTimeInterval: 0.8)
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&poller, 1, 0) == 0, "answered before the clock moved")
        clock.advance(by: 6)
        let (text, closed) = readUntilClose(fd, timeout: 5)
        #expect(text.hasPrefix("HTTP/1.1 408"), "\(text)")
        #expect(closed)
    }

    @Test("a client without permission on the socket cannot connect")
    func permission() throws {
        let registry = try registry { $0.controlSocketMode = 0o600 }
        // The temp directory must be traversable, so that only the socket's own mode decides.
        chmod(registry.temp.path, 0o755)
        let ctl = "\(repositoryRoot)/.build/debug/registryctl"
        let result: (status: Int32, output: String)
        if getuid() == 0 {
            // Root passes file permissions: run the client as 'nobody'.
            result = try run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ctl, "--socket", registry.config.controlSocket, "status"])
        } else {
            chmod(registry.config.controlSocket, 0)
            result = try run([ctl, "--socket", registry.config.controlSocket, "status"])
        }
        #expect(result.status == 1)
        #expect(result.output.contains("permission denied on control socket '\(registry.config.controlSocket)'"), "\(result.output)")
        // The owner still can.
        chmod(registry.config.controlSocket, 0o600)
        #expect(try run([ctl, "--socket", registry.config.controlSocket, "list"]).status == 0)
    }

    @Test("promote then rollback under continuous load: zero failed requests, every answer from a version that was production; rollback time printed")
    func swapUnderLoad() throws {
        let registry = try TestRegistry.digitsOneAndTwo()
        let socketPath = registry.config.controlSocket
        let (features, logreg, mlp) = try digitsRow(3)
        let body = Array(digitsBody(features).utf8)
        struct Sample { var sent: UInt64; var done: UInt64; var version: Int?; var status: Int; var label: Int64? }
        let samples = Mutex<[Sample]>([])
        let stop = Atomic<Bool>(false)
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                guard let client = try? HTTPTestClient(unixPath: socketPath) else { return }
                var local: [Sample] = []
                while !stop.load(ordering: .relaxed) {
                    let sent = DispatchTime.now().uptimeNanoseconds
                    let response = try? client.send("POST", "/v2/models/digits/infer", body: body)
                    local.append(Sample(sent: sent, done: DispatchTime.now().uptimeNanoseconds, version: response.flatMap(servedVersion),
                                        status: response?.status ?? -1, label: response.flatMap(label)))
                }
                samples.withLock { $0 += local }
            }
        }
        Thread.sleep(forTimeInterval: 0.5)
        let control = try HTTPTestClient(unixPath: socketPath)
        #expect(try control.json("POST", "/v1/models/digits/promote", #"{"version": 2}"#).0 == 200)
        Thread.sleep(forTimeInterval: 0.5)
        let commandSent = DispatchTime.now().uptimeNanoseconds
        let (status, rolled) = try control.json("POST", "/v1/models/digits/rollback", "{}")
        #expect(status == 200)
        Thread.sleep(forTimeInterval: 0.5)
        stop.store(true, ordering: .relaxed)
        group.wait()
        let all = samples.withLock { $0 }
        #expect(all.count > 100)
        let failed = all.filter { $0.status != 200 }
        #expect(failed.isEmpty, "\(failed.count) of \(all.count) requests failed")
        // Labels match the version that answered: no answer from a half-swapped state.
        #expect(all.allSatisfy { ($0.version == 1 && $0.label == logreg) || ($0.version == 2 && $0.label == mlp) })
        let firstOld = all.filter { $0.sent >= commandSent && $0.version == 1 }.map(\.done).min()
        #expect(firstOld != nil)
        if let firstOld {
            let milliseconds = Double(firstOld - commandSent) / 1e6
            print("rollback: \(String(format: "%.2f", milliseconds)) ms from command to the first request answered by the old version (server-side swap \(rolled["elapsed_ms"] ?? "?") ms); \(all.count) requests, \(failed.count) failed")
        }
    }
}
