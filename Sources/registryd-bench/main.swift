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
//                        [--header NAME:VALUE]... [--concurrency N] [--seconds S] [--warmup S]
//       A bounded closed-loop load generator: N keep-alive connections, each sending the next
//       request when the previous answer is complete, for S seconds after S of warm-up.
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
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return nil }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { fail("socket path too long") }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            let ok = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
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

final class Totals: @unchecked Sendable {
    // @unchecked Sendable: each worker fills its own slot; the main thread reads them only after
    // joining every worker (the semaphore below orders the accesses).
    var latencies: [[Double]]
    var errors: [Int]
    var firstError: [String?]
    init(_ n: Int) {
        latencies = Array(repeating: [], count: n)
        errors = Array(repeating: 0, count: n)
        firstError = Array(repeating: nil, count: n)
    }
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
    let seconds = options.double("seconds", 10)
    let warmup = options.double("warmup", 2)
    var head = "POST \(target) HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.count)\r\n"
    for header in options.values["header"] ?? [] {
        guard header.contains(":") else { fail("--header '\(header)' is not NAME:VALUE") }
        head += header + "\r\n"
    }
    head += "\r\n"
    let request = Array(head.utf8) + Array(body)

    let totals = Totals(concurrency)
    let begin = now()
    let measureFrom = begin + UInt64(warmup * 1e9)
    let end = measureFrom + UInt64(seconds * 1e9)
    let done = DispatchSemaphore(value: 0)
    for worker in 0..<concurrency {
        let thread = Thread {
            var fd: Int32 = -1
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var samples: [Double] = []
            var errors = 0
            while now() < end {
                if fd < 0 {
                    guard let connected = endpoint.connect() else {
                        errors += 1
                        if totals.firstError[worker] == nil { totals.firstError[worker] = "connect: \(String(cString: strerror(errno)))" }
                        usleep(10_000)
                        continue
                    }
                    fd = connected
                }
                let start = now()
                var ok = request.withUnsafeBytes { raw -> Bool in
                    var sent = 0
                    while sent < raw.count {
                        let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                        if n <= 0 { return false }
                        sent += n
                    }
                    return true
                }
                var parser = HTTPResponseParser()
                var response: HTTPResponse?
                while ok && response == nil {
                    let n = recv(fd, &buffer, buffer.count, 0)
                    if n <= 0 { ok = false; break }
                    parser.append(Array(buffer[0..<n]))
                    do { response = try parser.next(requestMethod: "POST") } catch { ok = false }
                }
                let elapsed = Double(now() - start) / 1000
                if !ok || response?.status != 200 {
                    if start >= measureFrom { errors += 1 }
                    if totals.firstError[worker] == nil {
                        totals.firstError[worker] = response.map { "HTTP \($0.status): \(String(decoding: $0.body.prefix(200), as: UTF8.self))" } ?? "connection failed"
                    }
                    close(fd)
                    fd = -1
                    continue
                }
                if start >= measureFrom { samples.append(elapsed) }
                if response?.headers["Connection"]?.lowercased() == "close" { close(fd); fd = -1 }
            }
            if fd >= 0 { close(fd) }
            totals.latencies[worker] = samples
            totals.errors[worker] = errors
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    for _ in 0..<concurrency { done.wait() }
    let all = totals.latencies.flatMap { $0 }.sorted()
    var result: [String: Any] = [
        "kind": "load", "concurrency": concurrency, "seconds": seconds, "requests": all.count,
        "errors": totals.errors.reduce(0, +), "throughput": Double(all.count) / seconds,
        "p50_us": all.isEmpty ? -1 : percentile(all, 0.5), "p99_us": all.isEmpty ? -1 : percentile(all, 0.99),
    ]
    if let first = totals.firstError.compactMap({ $0 }).first { result["first_error"] = first }
    printJSON(result)
}

let arguments = CommandLine.arguments
switch arguments.count > 1 ? arguments[1] : "" {
case "floor": floor(Options(arguments.dropFirst(2)))
case "load": load(Options(arguments.dropFirst(2)))
default:
    print("USAGE: registryd-bench floor --model FILE [--threads N] [--runs K]\n       registryd-bench load (--unix PATH | --tcp HOST:PORT) --target PATH --body FILE [--header NAME:VALUE]... [--concurrency N] [--seconds S] [--warmup S]")
    exit(arguments.count > 1 && (arguments[1] == "-h" || arguments[1] == "--help") ? 0 : 64)
}
