import Foundation
import Glibc
import Runtime
import Wire

// registryd-bench: the two measuring tools behind bench/run.
//
//   registryd-bench floor --model FILE [--threads N] [--runs K]
//       The floor: the Runtime module calling ONNX Runtime's Run in-process, batch 1, inputs
//       made once (like a server that has already decoded them). Prints JSON: p50/p99/mean in µs.
//   registryd-bench load (--unix PATH | --tcp HOST:PORT) --target PATH --body FILE
//                        [--header NAME:VALUE]... [--concurrency N] [--threads T] [--seconds S] [--warmup S]
//       A bounded closed-loop load generator: N keep-alive connections on T event-loop threads
//       (default 1), each connection sending the next request as soon as the previous answer is
//       complete, for S seconds after S of warm-up.
//       Prints JSON: requests, errors, throughput, p50/p99 in µs.
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
}

/// Reads one HTTP/1.1 response with a `Content-Length` body out of the bytes received so far,
/// without building strings or dictionaries: the load generator must cost the server it
/// measures as little CPU as it can, since they share the machine's cores. It reads what a
/// closed-loop client needs (status, body length, `Connection: close`) and refuses what it does
/// not support (chunked or unbounded bodies) with an error, rather than guess.
struct ResponseReader {
    private(set) var bytes: [UInt8] = Array(repeating: 0, count: 1 << 16)
    private(set) var filled = 0
    private var scanned = 0
    private var headEnd = -1
    private(set) var status = 0
    private var total = -1
    private(set) var closes = false

    enum Outcome { case needMore, complete, malformed(String) }

    mutating func reset() {
        filled = 0; scanned = 0; headEnd = -1; status = 0; total = -1; closes = false
    }

    /// Room for the next `recv`, growing the buffer when it is full.
    mutating func withFreeSpace(_ body: (UnsafeMutableRawPointer, Int) -> Int) -> Int {
        if filled == bytes.count { bytes.append(contentsOf: repeatElement(0, count: bytes.count)) }
        let n = bytes.withUnsafeMutableBytes { body($0.baseAddress! + filled, $0.count - filled) }
        if n > 0 { filled += n }
        return n
    }

    /// The response's first bytes of body, for an error message.
    var bodyPrefix: String {
        guard headEnd >= 0 else { return String(decoding: bytes[0..<min(filled, 200)], as: UTF8.self) }
        return String(decoding: bytes[headEnd..<min(filled, headEnd + 200)], as: UTF8.self)
    }

    mutating func parse() -> Outcome {
        if headEnd < 0 {
            var i = max(scanned, 3)
            while i < filled {
                if bytes[i] == 10 && bytes[i - 1] == 13 && bytes[i - 2] == 10 && bytes[i - 3] == 13 { break }
                i += 1
            }
            guard i < filled else {
                scanned = filled
                return filled > 64 << 10 ? .malformed("response head over 64 KiB") : .needMore
            }
            headEnd = i + 1
            guard filled >= 12, bytes[0..<7].elementsEqual("HTTP/1.".utf8) else { return .malformed("malformed status line") }
            status = bytes[9..<12].reduce(0) { $0 * 10 + Int($1) - 48 }
            var length = -1
            var line = 0
            while let next = bytes[line..<headEnd].firstIndex(of: 10), next + 1 < headEnd {
                line = next + 1
                if let value = headerValue(from: line, named: "content-length") {
                    length = value.reduce(0) { $0 * 10 + Int($1) - 48 }
                    guard value.allSatisfy({ (48...57).contains($0) }), !value.isEmpty else { return .malformed("malformed Content-Length") }
                } else if let value = headerValue(from: line, named: "connection") {
                    closes = value.count == 5 && value.map({ $0 | 0x20 }).elementsEqual("close".utf8)
                } else if headerValue(from: line, named: "transfer-encoding") != nil {
                    return .malformed("chunked or encoded bodies are not supported by the load generator")
                }
            }
            guard length >= 0 else { return .malformed("response without Content-Length") }
            total = headEnd + length
        }
        if filled < total { return .needMore }
        return filled == total ? .complete : .malformed("bytes after the response")
    }

    /// The value of the header line at `start` when its name is `name` (lowercase), spaces trimmed.
    private func headerValue(from start: Int, named name: String) -> ArraySlice<UInt8>? {
        let name = name.utf8
        guard start + name.count < headEnd, bytes[start + name.count] == UInt8(ascii: ":") else { return nil }
        for (offset, expected) in name.enumerated() where bytes[start + offset] | 0x20 != expected { return nil }
        var from = start + name.count + 1
        var to = bytes[from..<headEnd].firstIndex(of: 13) ?? headEnd
        while from < to && bytes[from] == 32 { from += 1 }
        while to > from && bytes[to - 1] == 32 { to -= 1 }
        return bytes[from..<to]
    }
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
func runLoop(endpoint: Endpoint, request: [UInt8], count: Int, measureFrom: UInt64, end: UInt64) -> LoopResult {
    var result = LoopResult()
    var connections = Array(repeating: LoadConnection(), count: count)
    var polls = Array(repeating: pollfd(fd: -1, events: 0, revents: 0), count: count)
    func fail(_ index: Int, _ why: String) {
        if connections[index].started >= measureFrom { result.errors += 1 }
        if result.firstError == nil { result.firstError = why }
        close(connections[index].fd)
        connections[index].fd = -1
        polls[index].fd = -1
    }
    /// Sends what the socket takes of the current request; false when the connection broke.
    func send(_ index: Int) -> Bool {
        while connections[index].sent < request.count {
            let n = request.withUnsafeBytes { raw in
                Glibc.send(connections[index].fd, raw.baseAddress! + connections[index].sent, raw.count - connections[index].sent,
                           Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
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
            let n = connections[index].inbox.withFreeSpace { recv(fd, $0, $1, Int32(MSG_DONTWAIT)) }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            if n <= 0 { fail(index, n == 0 ? "connection closed by the server" : "recv: \(String(cString: strerror(errno)))"); continue }
            switch connections[index].inbox.parse() {
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
                if inbox.closes { close(fd); connections[index].fd = -1; polls[index].fd = -1 }
            }
            if done < end { start(index, at: done) }
        }
    }
    for connection in connections where connection.fd >= 0 { close(connection.fd) }
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
            totals.results[loop] = runLoop(endpoint: endpoint, request: request, count: count, measureFrom: measureFrom, end: end)
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
default:
    print("USAGE: registryd-bench floor --model FILE [--threads N] [--runs K]\n       registryd-bench load (--unix PATH | --tcp HOST:PORT) --target PATH --body FILE [--header NAME:VALUE]... [--concurrency N] [--threads T] [--seconds S] [--warmup S]")
    exit(arguments.count > 1 && (arguments[1] == "-h" || arguments[1] == "--help") ? 0 : 64)
}
