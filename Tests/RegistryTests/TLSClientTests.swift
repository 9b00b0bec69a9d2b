import Foundation
import Testing
@testable import Registry

/// The TCP listener in HTTPS, checked with real clients: `openssl s_client`, curl, Python's
/// `ssl` and tritonclient with `ssl=True`, against a daemon serving the digits classifier with
/// a certificate from the test's own CA.
@Suite("TLS clients", .serialized)
struct TLSClientTests {
    /// A running registry serving digits version 1 over HTTPS (and its PKI).
    static func httpsRegistry(clientCA: Bool = false, _ configure: (inout DaemonConfig) -> Void = { _ in }) throws -> (TestRegistry, TestPKI, Int) {
        let registry = TestRegistry()
        let pki = try TestPKI(in: registry.temp)
        registry.config.useTLS(try pki.issue("server", subject: "/CN=localhost"), clientCA: clientCA ? pki.caCertificate : nil)
        configure(&registry.config)
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        return (registry, pki, try #require(registry.daemon!.tcpPort))
    }

    @Test("openssl s_client: TLS 1.3 and 1.2 negotiate with ALPN http/1.1 and resume sessions; TLS 1.1 and 1.0 are refused by the server (protocol_version alert) even from a client that allows them")
    func protocolVersions() throws {
        let (registry, pki, port) = try TLSClientTests.httpsRegistry()
        defer { registry.stop() }
        let common = ["-CAfile", pki.caCertificate, "-verify_return_error", "-alpn", "h2,http/1.1"]
        let tls13 = try sClient(port: port, common + ["-tls1_3"])
        #expect(tls13.output.contains("New, TLSv1.3, Cipher is TLS_AES_128_GCM_SHA256"), "\(tls13.output)")
        #expect(tls13.output.contains("ALPN protocol: http/1.1"))
        #expect(tls13.output.contains("Verify return code: 0 (ok)"))
        let tls12 = try sClient(port: port, common + ["-tls1_2"])
        #expect(tls12.output.contains("New, TLSv1.2, Cipher is ECDHE-ECDSA-"), "\(tls12.output)")
        #expect(tls12.output.contains("ALPN protocol: http/1.1"))
        // Debian's client refuses TLS 1.1 and 1.0 by itself at its default security level; at
        // level 0 it offers them, and the refusal is the server's own alert.
        for version in ["-tls1_1", "-tls1"] {
            let old = try sClient(port: port, ["-CAfile", pki.caCertificate, version, "-cipher", "DEFAULT@SECLEVEL=0"])
            #expect(old.status != 0)
            #expect(old.output.contains("alert protocol version"), "\(version): \(old.output)")
            #expect(!old.output.contains("no protocols available"), "\(version): the client refused by itself: \(old.output)")
        }
        // A session saved from one connection resumes on the next (TLS 1.3 tickets, 1.2 too).
        // Each sends a request and reads to the close, so that the ticket has arrived.
        let request = "GET /v2/health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        for version in ["-tls1_3", "-tls1_2"] {
            let session = "\(pki.directory)/session\(version).pem"
            let first = try sClient(port: port, common + [version, "-sess_out", session], request: request)
            #expect(first.output.contains("HTTP/1.1 200 OK"), "\(version): \(first.output)")
            let again = try sClient(port: port, common + [version, "-sess_in", session], request: request)
            #expect(again.output.contains("Reused, TLSv1."), "\(version): \(again.output)")
            #expect(again.output.contains("HTTP/1.1 200 OK"))
        }
        let metrics = try tlsMetricsText(port: port, pki: pki)
        #expect(metricValue(metrics, #"registryd_tls_handshake_failures_total{reason="protocol_version"}"#) == 2, "\(metrics)")
        #expect((metricValue(metrics, #"registryd_tls_handshakes_total{resumed="true"}"#) ?? 0) >= 2)
        #expect((metricValue(metrics, #"registryd_tls_handshakes_total{resumed="false"}"#) ?? 0) >= 4)
    }

    @Test("curl --cacert, Python's ssl and tritonclient with ssl=True predict over HTTPS and get scikit-learn's labels")
    func clientsPredict() throws {
        let (registry, pki, port) = try TLSClientTests.httpsRegistry()
        defer { registry.stop() }
        let (features, expected, _) = try digitsRow(5)
        let answer = try curl(["--cacert", pki.caCertificate, "-w", "\n%{http_code} %{http_version} %{ssl_verify_result}",
                               "-H", "Content-Type: application/json", "--data", digitsBody(features),
                               "https://127.0.0.1:\(port)/v2/models/digits/infer"])
        #expect(answer.status == 0, "\(answer.output)")
        let lines = answer.output.split(separator: "\n")
        #expect(lines.last == "200 1.1 0", "\(answer.output)")
        let object = try JSONSerialization.jsonObject(with: Data((lines.first ?? "").utf8)) as? [String: Any]
        let outputs = object?["outputs"] as? [[String: Any]] ?? []
        #expect((outputs.first { $0["name"] as? String == "label" }?["data"] as? [NSNumber])?.first?.int64Value == expected, "\(answer.output)")
        // curl refuses a server it cannot verify: the certificate is what makes it HTTPS.
        let unverified = try curl(["https://127.0.0.1:\(port)/v2/health/live"])
        #expect(unverified.status == 60, "\(unverified.output)")

        let python = try clientScript("tls_check.py", ["127.0.0.1:\(port)", pki.caCertificate, "\(fixtures)/digits_test.json"])
        #expect(python.status == 0, "\(python.output)")
        #expect(python.output.contains("all checks passed"), "\(python.output)")
    }

    @Test("/metrics shows the certificate in force: its expiry time as a gauge, its subject and fingerprint")
    func certificateMetrics() throws {
        let (registry, pki, port) = try TLSClientTests.httpsRegistry()
        defer { registry.stop() }
        let metrics = try tlsMetricsText(port: port, pki: pki)
        let fingerprint = try pki.fingerprint("\(pki.directory)/server.pem")
        #expect(metrics.contains(#"registryd_tls_certificate_info{subject="CN=localhost",sha256="\#(fingerprint)"} 1"#), "\(metrics)")
        let notAfter = try pki.openssl(["x509", "-in", "server.pem", "-noout", "-enddate"])
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "MMM d HH:mm:ss yyyy zzz"
        let text = notAfter.replacingOccurrences(of: "notAfter=", with: "").replacingOccurrences(of: "  ", with: " ").trimmingCharacters(in: .whitespacesAndNewlines)
        let expiry = try #require(formatter.date(from: text), "\(text)")
        #expect(metricValue(metrics, "registryd_tls_certificate_expiry_timestamp_seconds") == expiry.timeIntervalSince1970.rounded())
    }
}
