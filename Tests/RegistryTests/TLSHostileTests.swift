import Foundation
import Glibc
import Testing
@testable import Registry

/// The HTTPS listener under hostile input: each is dropped or answered, and a good client (curl
/// with the CA) is served throughout.
@Suite("TLS under hostile input", .serialized)
struct TLSHostileTests {
    /// A good client is served: curl predicts over HTTPS and gets the right label.
    func expectServed(_ port: Int, _ pki: TestPKI) throws {
        let (features, expected, _) = try digitsRow(1)
        let answer = try curl(["--cacert", pki.caCertificate, "-H", "Content-Type: application/json", "--data", digitsBody(features),
                               "https://127.0.0.1:\(port)/v2/models/digits/infer"])
        #expect(answer.status == 0, "\(answer.output)")
        #expect(answer.output.contains("\"data\":[\(expected)]"), "\(answer.output)")
    }

    @Test("garbage instead of a ClientHello (random bytes, and a handshake record full of junk) is dropped; a good client is served before and after")
    func garbage() throws {
        let (registry, pki, port) = try TLSClientTests.httpsRegistry()
        defer { registry.stop() }
        var generator = SystemRandomNumberGenerator()
        // Random bytes after a first byte that is no TLS record type (a random 0x16 could
        // promise a record long enough to wait for).
        let random = [0x42] + (0..<600).map { _ in UInt8.random(in: 0...255, using: &generator) }
        // A record that says "handshake, 64 bytes", then 64 bytes that are no ClientHello.
        let junkHandshake: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x40] + Array(repeating: 0xEE, count: 64)
        for bytes in [random, junkHandshake, [0x80, 0x01, 0x02] + random] {
            try expectServed(port, pki)
            let fd = try rawTCPConnect(port)
            defer { close(fd) }
            // The server may close before taking everything: a failed send is a drop too.
            try? writeAll(fd, bytes)
            let (text, closed) = readUntilClose(fd, timeout: 10)
            #expect(closed, "still open after \(bytes.prefix(5)): \(text.prefix(100).debugDescription)")
            #expect(!text.contains("HTTP/1.1"), "answered garbage in HTTP: \(text.prefix(100).debugDescription)")
        }
        try expectServed(port, pki)
        let metrics = try tlsMetricsText(port: port, pki: pki)
        let failures = TLSMetrics.FailureReason.allCases.compactMap { metricValue(metrics, "registryd_tls_handshake_failures_total{reason=\"\($0.rawValue)\"}") }
        #expect(failures.reduce(0, +) >= 3, "\(metrics)")
    }

    @Test("a handshake that stalls is dropped after the request timeout while others are served meanwhile")
    func stalledHandshake() throws {
        let (registry, pki, port) = try TLSClientTests.httpsRegistry { $0.requestTimeoutSeconds = 1 }
        defer { registry.stop() }
        // A record header that promises 512 bytes, then nothing; and a client that sends nothing at all.
        let stalled = try rawTCPConnect(port)
        defer { close(stalled) }
        try writeAll(stalled, [0x16, 0x03, 0x01, 0x02, 0x00])
        let silent = try rawTCPConnect(port)
        defer { close(silent) }
        try expectServed(port, pki)
        for fd in [stalled, silent] {
            let (text, closed) = readUntilClose(fd, timeout: 10)
            // At most OpenSSL's alert record (content type 21) on its way out; never HTTP.
            #expect(closed && (text.isEmpty || text.utf8.first == 0x15), "\(text.debugDescription)")
        }
        try expectServed(port, pki)
        let metrics = try tlsMetricsText(port: port, pki: pki)
        #expect(metricValue(metrics, #"registryd_tls_handshake_failures_total{reason="timeout"}"#) == 2, "\(metrics)")
    }

    @Test("1,000 half-open handshakes count against the connection cap and hold up no one; a good client is served throughout, past the cap a client is refused, and the late ones are dropped")
    func halfOpenHandshakes() throws {
        let (registry, pki, port) = try TLSClientTests.httpsRegistry {
            $0.maxConnections = 1010
            // Long enough for the test to reach the cap before the first of them is dropped.
            $0.requestTimeoutSeconds = 8
        }
        defer { registry.stop() }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let server = registry.daemon!.server
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        for index in 0..<1000 {
            let fd = try rawTCPConnect(port)
            fds.append(fd)
            // Half of them start a handshake record, half send nothing.
            if index % 2 == 0 { try writeAll(fd, [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]) }
        }
        #expect(registry.wait { server.counts.connections >= 1000 } != nil, "\(server.counts.connections) connections")
        try expectServed(port, pki)
        // Up to the cap, then one more: closed without a handshake.
        while server.counts.connections < 1010 {
            fds.append(try rawTCPConnect(port))
            Thread.sleep(forTimeInterval: 0.001)
        }
        let refused = try curl(["--cacert", pki.caCertificate, "https://127.0.0.1:\(port)/v2/health/live"])
        #expect(refused.status != 0, "\(refused.output)")
        // The request timeout drops them all; then the good client is served again.
        #expect(registry.wait(timeout: 60) { server.counts.connections == 0 } != nil, "\(server.counts.connections) connections left")
        for fd in fds {
            let (_, closed) = readUntilClose(fd, timeout: 1)
            #expect(closed)
        }
        try expectServed(port, pki)
        let metrics = try tlsMetricsText(port: port, pki: pki)
        #expect((metricValue(metrics, #"registryd_tls_handshake_failures_total{reason="timeout"}"#) ?? 0) >= 1010, "\(metrics)")
    }

    @Test("plain HTTP sent to the TLS port gets a plain-text 400 that says to use HTTPS, a log line, and the close: never a hang")
    func plainHTTP() throws {
        let (registry, pki, port) = try TLSClientTests.httpsRegistry()
        defer { registry.stop() }
        for request in ["GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n", "POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"] {
            let fd = try rawTCPConnect(port)
            defer { close(fd) }
            try writeAll(fd, Array(request.utf8))
            let (text, closed) = readUntilClose(fd, timeout: 10)
            #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(text.debugDescription)")
            #expect(text.contains("this port speaks HTTPS"))
            #expect(closed)
        }
        let viaCurl = try curl(["-w", " %{http_code}", "http://127.0.0.1:\(port)/v2/health/ready"])
        #expect(viaCurl.output.hasSuffix("speaks HTTPS (TLS); send the request to https:// instead of http://\n 400"), "\(viaCurl.output)")
        #expect(registry.lines.all.contains { $0.contains("tls handshake failed") && $0.contains("reason=plain_http") && $0.contains("peer=127.0.0.1:") })
        try expectServed(port, pki)
        let metrics = try tlsMetricsText(port: port, pki: pki)
        #expect(metricValue(metrics, #"registryd_tls_handshake_failures_total{reason="plain_http"}"#) == 3, "\(metrics)")
    }
}
