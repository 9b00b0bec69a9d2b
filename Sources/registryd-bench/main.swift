import Foundation
import Glibc
import Runtime
import Wire

// registryd-bench: the two measuring tools behind bench/run.
//
//   registryd-bench floor --model FILE [--threads N] [--runs K]
//       The floor: the Runtime module calling ONNX Runtime's Run in-process, batch 1, inputs
//       made once (like a server that has already decoded them). Prints JSON: p50/p99/mean in µs.
//   registryd-bench load (--unix PATH | --tcp HOST:PORT [--tls-ca FILE]) --target PATH --body FILE
//                        [--header NAME:VALUE]... [--concurrency N] [--threads T] [--seconds S] [--warmup S]
//       A bounded closed-loop load generator: N keep-alive connections on T event-loop threads
//       (default 1), each connection sending the next request as soon as the previous answer is
//       complete, for S seconds after S of warm-up; in HTTPS with --tls-ca (the server's CA).
//       Prints JSON: requests, errors, throughput, p50/p99 in µs.
//   registryd-bench connect --tcp HOST:PORT [--tls-ca FILE [--resume yes]] [--target PATH]
//                           [--concurrency N] [--seconds S] [--warmup S]
//       New connections per second: N threads each connecting, (handshaking, resuming the last
//       session with --resume yes), sending one GET and closing, in a loop (ConnectionRate.swift).
//
// It measures and prints; it judges nothing (bench/run compares and writes BENCHMARKS.md).

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("registryd-bench: \(message)\n".utf8))
    exit(64)
}

struct Options {
    var values: [String: [String]] = [:]
    init(_ arguments: ArraySlice<String>) {
        var rest = arguments
        while let name = rest.popFirst() {
            guard name.hasPrefix("--") else { fail("unexpected argument '\(name)'") }
            guard let value = rest.popFirst() else { fail("missing value for '\(name)'") }
            values[String(name.dropFirst(2)), default: []].append(value)
        }
    }
    func string(_ name: String) -> String? { values[name]?.last }
    func int(_ name: String, _ fallback: Int) -> Int {
        guard let text = string(name) else { return fallback }
        guard let value = Int(text), value > 0 else { fail("--\(name) '\(text)' is not a positive integer") }
        return value
    }
    func double(_ name: String, _ fallback: Double) -> Double {
        guard let text = string(name) else { return fallback }
        guard let value = Double(text), value >= 0 else { fail("--\(name) '\(text)' is not a non-negative number") }
        return value
    }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let index = min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
    return sorted[index]
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func printJSON(_ object: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
        fail("cannot encode the result as JSON: \(object)")  // a NaN or infinite figure
    }
    print(String(decoding: data, as: UTF8.self))
}

// MARK: floor

func floor(_ options: Options) {
    guard let path = options.string("model") else { fail("floor needs --model FILE") }
    let threads = options.int("threads", 1)
    let runs = options.int("runs", 2000)
    do {
        let environment = try Environment.shared()
        let session = try Session(path: path, environment: environment, options: SessionOptions(intraOpThreads: threads))
        var inputs: [String: Tensor] = [:]
        for input in session.inputs {
            let shape = input.shape.map { $0.value < 0 ? 1 : $0.value }
            let count = shape.reduce(1, *)
            guard input.elementType == .float else { fail("floor supports float inputs only; '\(input.name)' is \(input.elementType)") }
            inputs[input.name] = try Tensor(shape: shape, scalars: (0..<count).map { Float($0 % 17) })
        }
        for _ in 0..<max(3, runs / 20) { _ = try session.run(inputs) }
        var samples: [Double] = []
        samples.reserveCapacity(runs)
        for _ in 0..<runs {
            let start = now()
            _ = try session.run(inputs)
            samples.append(Double(now() - start) / 1000)
        }
        samples.sort()
        printJSON(["kind": "floor", "model": path, "threads": threads, "runs": runs,
                   "p50_us": percentile(samples, 0.5), "p99_us": percentile(samples, 0.99), "mean_us": samples.reduce(0, +) / Double(samples.count)])
    } catch {
        fail("\(error)")
    }
}

// MARK: load

enum Endpoint {
    case unix(String)
    case tcp(String, UInt16)

    func connect() -> Int32? {
        switch self {
        case .unix(let path):
            guard let address = UnixSocketAddress(path: path) else { fail("socket path too long") }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return nil }
            let ok = address.withSockaddr { Glibc.connect(fd, $0, $1) }
            if ok != 0 { close(fd); return nil }
            return fd
        case .tcp(let host, let port):
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return nil }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { fail("'\(host)' is not an IPv4 address") }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let ok = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if ok != 0 { close(fd); return nil }
            return fd
        }
    }
}

/// One keep-alive connection of the load generator: its socket, how much of the request it has
/// sent, and the response it is reading. Owned by one event loop.
struct LoadConnection {
    var fd: Int32 = -1
    var sent = 0
    var started: UInt64 = 0
    var inbox = ResponseReader()
    /// When a failed connect may be tried again (0: now).
    var retryAt: UInt64 = 0
    /// The TLS session over `fd` (HTTPS), nil for plain HTTP.
    var tls: TLSClientSession?
}

/// What one event loop measured.
struct LoopResult {
    var latencies: [Double] = []
    var errors = 0
    var firstError: String?
}

/// One event loop driving `count` closed-loop connections with `poll`: a loop sends each
/// connection's next request as soon as its answer is complete. One thread serves many
/// connections, so at concurrency 64 the generator does not add 64 threads' wake-ups to the
/// cores the server needs (the thread-per-connection generator it replaced did).
///
/// With `tls`, each connection does its handshake when it connects (blocking, before its first
/// request is timed) and then speaks HTTPS.
func runLoop(endpoint: Endpoint, tls: TLSClientContext?, request: [UInt8], count: Int, measureFrom: UInt64, end: UInt64) -> LoopResult {
    var result = LoopResult()
    var connections = Array(repeating: LoadConnection(), count: count)
    var polls = Array(repeating: pollfd(fd: -1, events: 0, revents: 0), count: count)
    func fail(_ index: Int, _ why: String) {
        if connections[index].started >= measureFrom { result.errors += 1 }
        if result.firstError == nil { result.firstError = why }
        connections[index].tls = nil
        close(connections[index].fd)
        connections[index].fd = -1
        polls[index].fd = -1
    }
    /// Sends what the socket takes of the current request; false when the connection broke.
    func send(_ index: Int) -> Bool {
        while connections[index].sent < request.count {
            let n = request.withUnsafeBytes { raw in
                let rest = raw.count - connections[index].sent
                if let session = connections[index].tls {
                    let written = session.write(raw.baseAddress! + connections[index].sent, rest)
                    if written == 0 { errno = EAGAIN }
                    return written == 0 ? -1 : written
                }
                return Glibc.send(connections[index].fd, raw.baseAddress! + connections[index].sent, rest, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n > 0 { connections[index].sent += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { break }
            return false
        }
        polls[index].events = Int16(connections[index].sent < request.count ? POLLOUT : POLLIN)
        return true
    }
    func start(_ index: Int, at time: UInt64) {
        if connections[index].fd < 0 {
            guard time >= connections[index].retryAt else { return }
            guard let fd = endpoint.connect() else {
                result.errors += time >= measureFrom ? 1 : 0
                if result.firstError == nil { result.firstError = "connect: \(String(cString: strerror(errno)))" }
                connections[index].retryAt = time + 10_000_000
                return
            }
            if let tls {
                guard let session = TLSClientSession(context: tls, fd: fd) else {
                    close(fd)
                    result.errors += time >= measureFrom ? 1 : 0
                    if result.firstError == nil { result.firstError = "tls handshake failed" }
                    connections[index].retryAt = time + 10_000_000
                    return
                }
                connections[index].tls = session
            }
            connections[index].fd = fd
            polls[index].fd = fd
        }
        connections[index].sent = 0
        connections[index].started = time
        connections[index].inbox.reset()
        if !send(index) { fail(index, "send failed: \(String(cString: strerror(errno)))") }
    }
    var time = now()
    for index in 0..<count { start(index, at: time) }
    while time < end {
        let waitMs = Int32(max(1, min(100, (end - time) / 1_000_000)))
        let ready = poll(&polls, nfds_t(count), waitMs)
        time = now()
        if ready < 0 && errno != EINTR { result.firstError = result.firstError ?? "poll: \(String(cString: strerror(errno)))"; break }
        for index in 0..<count {
            let events = polls[index].revents
            polls[index].revents = 0
            if polls[index].fd < 0 {
                if time < end { start(index, at: time) }
                continue
            }
            if events == 0 { continue }
            if connections[index].sent < request.count {
                if !send(index) { fail(index, "send failed: \(String(cString: strerror(errno)))") }
                continue
            }
            let fd = connections[index].fd
            var outcome = ResponseReader.Outcome.needMore
            if let session = connections[index].tls {
                // Every record OpenSSL holds is read before waiting again: poll cannot see them.
                var n = 0
                repeat {
                    n = connections[index].inbox.withFreeSpace { session.read($0, $1) }
                    if n < 0 { break }
                    outcome = connections[index].inbox.parse()
                } while outcome.needsMore && session.hasPending
                if n < 0 { fail(index, "connection closed by the server"); continue }
            } else {
                let n = connections[index].inbox.withFreeSpace { recv(fd, $0, $1, Int32(MSG_DONTWAIT)) }
                if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                if n <= 0 { fail(index, n == 0 ? "connection closed by the server" : "recv: \(String(cString: strerror(errno)))"); continue }
                outcome = connections[index].inbox.parse()
            }
            switch outcome {
            case .needMore: continue
            case .malformed(let why): fail(index, why); continue
            case .complete: break
            }
            let done = now()
            let inbox = connections[index].inbox
            if inbox.status != 200 {
                fail(index, "HTTP \(inbox.status): \(inbox.bodyPrefix)")
            } else {
                if connections[index].started >= measureFrom { result.latencies.append(Double(done - connections[index].started) / 1000) }
                if inbox.closes { connections[index].tls = nil; close(fd); connections[index].fd = -1; polls[index].fd = -1 }
            }
            if done < end { start(index, at: done) }
        }
    }
    for index in connections.indices where connections[index].fd >= 0 {
        connections[index].tls = nil
        close(connections[index].fd)
    }
    return result
}

final class Totals: @unchecked Sendable {
    // @unchecked Sendable: each event loop fills its own slot; the main thread reads them only
    // after joining every loop (the semaphore below orders the accesses).
    var results: [LoopResult]
    init(_ n: Int) { results = Array(repeating: LoopResult(), count: n) }
}

func load(_ options: Options) {
    let endpoint: Endpoint
    if let path = options.string("unix") {
        endpoint = .unix(path)
    } else if let address = options.string("tcp"), let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) {
        endpoint = .tcp(String(address[..<colon]), port)
    } else {
        fail("load needs --unix PATH or --tcp HOST:PORT")
    }
    let tls = options.string("tls-ca").map { TLSClientContext(caFile: $0) }
    if tls != nil, case .unix = endpoint { fail("--tls-ca needs --tcp HOST:PORT") }
    guard let target = options.string("target") else { fail("load needs --target PATH") }
    guard let bodyPath = options.string("body"), let body = FileManager.default.contents(atPath: bodyPath) else { fail("load needs --body FILE (readable)") }
    let concurrency = options.int("concurrency", 1)
    let loops = min(concurrency, options.int("threads", 1))
    let seconds = options.double("seconds", 10)
    let warmup = options.double("warmup", 2)
    var head = "POST \(target) HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.count)\r\n"
    for header in options.values["header"] ?? [] {
        guard header.contains(":") else { fail("--header '\(header)' is not NAME:VALUE") }
        head += header + "\r\n"
    }
    head += "\r\n"
    let request = Array(head.utf8) + Array(body)

    let totals = Totals(loops)
    let begin = now()
    let measureFrom = begin + UInt64(warmup * 1e9)
    let end = measureFrom + UInt64(seconds * 1e9)
    let done = DispatchSemaphore(value: 0)
    for loop in 0..<loops {
        // Connections spread evenly over the loops.
        let count = concurrency / loops + (loop < concurrency % loops ? 1 : 0)
        let thread = Thread {
            totals.results[loop] = runLoop(endpoint: endpoint, tls: tls, request: request, count: count, measureFrom: measureFrom, end: end)
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    for _ in 0..<loops { done.wait() }
    let all = totals.results.flatMap(\.latencies).sorted()
    var result: [String: Any] = [
        "kind": "load", "concurrency": concurrency, "threads": loops, "seconds": seconds, "requests": all.count,
        "errors": totals.results.map(\.errors).reduce(0, +), "throughput": Double(all.count) / seconds,
        "p50_us": all.isEmpty ? -1 : percentile(all, 0.5), "p99_us": all.isEmpty ? -1 : percentile(all, 0.99),
    ]
    if let first = totals.results.compactMap(\.firstError).first { result["first_error"] = first }
    printJSON(result)
}

let arguments = CommandLine.arguments
switch arguments.count > 1 ? arguments[1] : "" {
case "floor": floor(Options(arguments.dropFirst(2)))
case "load": load(Options(arguments.dropFirst(2)))
case "connect": connectionRate(Options(arguments.dropFirst(2)))
default:
    print("USAGE: registryd-bench floor --model FILE [--threads N] [--runs K]\n       registryd-bench load (--unix PATH | --tcp HOST:PORT [--tls-ca FILE]) --target PATH --body FILE [--header NAME:VALUE]... [--concurrency N] [--threads T] [--seconds S] [--warmup S]\n       registryd-bench connect --tcp HOST:PORT [--tls-ca FILE [--resume yes]] [--target PATH] [--concurrency N] [--seconds S] [--warmup S]")
    exit(arguments.count > 1 && (arguments[1] == "-h" || arguments[1] == "--help") ? 0 : 64)
}
