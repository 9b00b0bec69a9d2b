import Foundation
import Glibc

/// `registryd-bench connect`: new connections per second, the cost a client pays when it does
/// not keep its connection. Each of N threads, in a closed loop: connect, the TLS handshake
/// (with `--resume`, resuming the session its previous connection was given: a TLS 1.3 ticket),
/// one GET, its answer read whole, close (the client first, so that the TIME_WAIT state stays on
/// the side that Linux lets reuse on loopback). Prints JSON: connections, errors, rate, p50/p99
/// of one whole connection in µs, and how many handshakes resumed.
func connectionRate(_ options: Options) {
    guard let address = options.string("tcp"), let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
        fail("connect needs --tcp HOST:PORT")
    }
    let endpoint = Endpoint.tcp(String(address[..<colon]), port)
    let tls = options.string("tls-ca").map { TLSClientContext(caFile: $0) }
    let resume = options.string("resume") == "yes"
    if resume && tls == nil { fail("--resume yes needs --tls-ca FILE") }
    let target = options.string("target") ?? "/v2/health/live"
    let concurrency = options.int("concurrency", 1)
    let seconds = options.double("seconds", 5)
    let warmup = options.double("warmup", 1)
    let request = Array("GET \(target) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
    let begin = now()
    let measureFrom = begin + UInt64(warmup * 1e9)
    let end = measureFrom + UInt64(seconds * 1e9)

    final class Tally: @unchecked Sendable {
        // @unchecked Sendable: each thread fills its own slot; read after all have signalled.
        var latencies: [[Double]]
        var errors: [Int]
        var resumed: [Int]
        var firstError: [String?]
        init(_ n: Int) {
            latencies = Array(repeating: [], count: n)
            errors = Array(repeating: 0, count: n)
            resumed = Array(repeating: 0, count: n)
            firstError = Array(repeating: nil, count: n)
        }
    }
    let tally = Tally(concurrency)
    let done = DispatchSemaphore(value: 0)
    for index in 0..<concurrency {
        let thread = Thread {
            var saved: TLSSavedSession?
            while now() < end {
                let started = now()
                let outcome = oneConnection(endpoint: endpoint, tls: tls, resume: resume ? saved : nil, request: request)
                let measured = started >= measureFrom
                switch outcome {
                case .success(let session, let wasResumed):
                    saved = session ?? saved
                    if measured {
                        tally.latencies[index].append(Double(now() - started) / 1000)
                        if wasResumed { tally.resumed[index] += 1 }
                    }
                case .failure(let why):
                    if measured { tally.errors[index] += 1 }
                    if tally.firstError[index] == nil { tally.firstError[index] = why }
                    usleep(1000)
                }
            }
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    for _ in 0..<concurrency { done.wait() }
    let all = tally.latencies.flatMap { $0 }.sorted()
    var result: [String: Any] = [
        "kind": "connect", "tls": tls != nil, "resume": resume, "concurrency": concurrency, "seconds": seconds, "connections": all.count,
        "errors": tally.errors.reduce(0, +), "rate": Double(all.count) / seconds, "resumed": tally.resumed.reduce(0, +),
        "p50_us": all.isEmpty ? -1 : percentile(all, 0.5), "p99_us": all.isEmpty ? -1 : percentile(all, 0.99),
    ]
    if let first = tally.firstError.compactMap({ $0 }).first { result["first_error"] = first }
    printJSON(result)
}

/// What one connection came to: its session to resume (TLS) and whether it resumed one.
enum ConnectionOutcome {
    case success(TLSSavedSession?, resumed: Bool)
    case failure(String)
}

/// One whole connection: connect, handshake, one request, its answer, close. Blocking.
func oneConnection(endpoint: Endpoint, tls: TLSClientContext?, resume: TLSSavedSession?, request: [UInt8]) -> ConnectionOutcome {
    guard let fd = endpoint.connect() else { return .failure("connect: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var session: TLSClientSession?
    if let tls {
        guard let secured = TLSClientSession(context: tls, fd: fd, resume: resume, nonBlocking: false) else { return .failure("tls handshake failed") }
        session = secured
    }
    defer { session?.shutdown() }
    var sent = 0
    while sent < request.count {
        let n = request.withUnsafeBytes { raw in
            session.map { $0.write(raw.baseAddress! + sent, raw.count - sent) }
                ?? Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
        }
        if n <= 0 { return .failure("send failed") }
        sent += n
    }
    var inbox = ResponseReader()
    while true {
        let n = inbox.withFreeSpace { buffer, count in session.map { $0.read(buffer, count) } ?? recv(fd, buffer, count, 0) }
        if n <= 0 { return .failure("connection closed before the answer") }
        switch inbox.parse() {
        case .needMore: continue
        case .malformed(let why): return .failure(why)
        case .complete:
            guard inbox.status == 200 else { return .failure("HTTP \(inbox.status)") }
            return .success(session?.saved(), resumed: session?.resumed ?? false)
        }
    }
}
