import Foundation
import Testing
import Wire
@testable import Registry

/// Mutual TLS (`tls_client_ca`): only clients with a certificate from that CA get through, and
/// the certificate's subject is who they are.
@Suite("Mutual TLS", .serialized)
struct TLSMutualTests {
    @Test("a client without a certificate, or with one from another CA, is refused in the handshake; one from the CA is served, by curl, Python's ssl and tritonclient")
    func onlyTheCAsClients() throws {
        let (registry, pki, port) = try TLSClientTests.httpsRegistry(clientCA: true)
        defer { registry.stop() }
        let url = "https://127.0.0.1:\(port)/v2/health/ready"
        let client = try pki.issue("client-a", subject: "/O=registryd tests/CN=client-a", server: false)
        try pki.makeCA("other-ca", subject: "/CN=another CA")
        let intruder = try pki.issue("intruder", subject: "/CN=intruder", ca: "other-ca", server: false)

        let anonymous = try curl(["--cacert", pki.caCertificate, url])
        #expect(anonymous.status != 0 && anonymous.output.contains("alert certificate required"), "\(anonymous.output)")
        let foreign = try curl(["--cacert", pki.caCertificate, "--cert", intruder.certificate, "--key", intruder.key, url])
        #expect(foreign.status != 0 && foreign.output.contains("alert unknown ca"), "\(foreign.output)")
        let anonymousHandshake = try sClient(port: port, ["-CAfile", pki.caCertificate])
        #expect(anonymousHandshake.output.contains("Acceptable client certificate CA names") && anonymousHandshake.output.contains("CN = test CA"),
                "the server names the CA it wants: \(anonymousHandshake.output)")

        let accepted = try curl(["--cacert", pki.caCertificate, "--cert", client.certificate, "--key", client.key, "-w", " %{http_code}", url])
        #expect(accepted.status == 0 && accepted.output.hasSuffix(" 200"), "\(accepted.output)")
        let python = try clientScript("tls_check.py", ["127.0.0.1:\(port)", pki.caCertificate, "\(fixtures)/digits_test.json", client.certificate, client.key])
        #expect(python.status == 0 && python.output.contains("all checks passed"), "\(python.output)")

        let metrics = try tlsMetricsText(port: port, pki: pki, clientPair: client)
        #expect((metricValue(metrics, #"registryd_tls_handshake_failures_total{reason="no_client_certificate"}"#) ?? 0) >= 2, "\(metrics)")
        #expect(metricValue(metrics, #"registryd_tls_handshake_failures_total{reason="bad_client_certificate"}"#) == 1, "\(metrics)")
        #expect(registry.lines.all.contains { $0.contains("tls handshake failed") && $0.contains("reason=bad_client_certificate") })
        #expect(registry.lines.all.contains { $0.contains("tls client certificate accepted") && $0.contains("subject=\"CN=client-a,O=registryd tests\"") })
    }

    @Test("the accepted client's certificate subject is who the server's handler is told the peer is (the actor of what it does)")
    func subjectIsTheActor() throws {
        // TCP serves no control command (403 there, a rule this change keeps), so no event can be
        // recorded over it yet: the actor is checked where the daemon takes it, the peer the
        // server hands to its handler (Endpoints passes `peer.description` as the actor).
        let temp = TempDirectory()
        let pki = try TestPKI(in: temp)
        let serverPair = try pki.issue("server", subject: "/CN=localhost")
        let client = try pki.issue("client-a", subject: "/O=registryd tests/CN=client-a", server: false)
        let server = try HTTPServer(configuration: .init(threads: 2), log: Log(level: .error)) { _, peer in
            HTTPResponse(status: 200, body: Array(peer.description.utf8))
        }
        try server.listenTCP("127.0.0.1:0", tls: TLSFiles(certificate: serverPair.certificate, privateKey: serverPair.key, clientCA: pki.caCertificate))
        server.start()
        defer { server.stop(deadline: 2) }
        let port = try #require(server.tcpPort)
        let answer = try curl(["--cacert", pki.caCertificate, "--cert", client.certificate, "--key", client.key, "https://127.0.0.1:\(port)/whoami"])
        #expect(answer.status == 0)
        #expect(answer.output.hasPrefix("CN=client-a,O=registryd tests (tls 127.0.0.1:"), "\(answer.output)")

        // Without mutual TLS the peer is its address alone.
        let plain = try HTTPServer(configuration: .init(threads: 2), log: Log(level: .error)) { _, peer in
            HTTPResponse(status: 200, body: Array(peer.description.utf8))
        }
        try plain.listenTCP("127.0.0.1:0", tls: TLSFiles(certificate: serverPair.certificate, privateKey: serverPair.key))
        plain.start()
        defer { plain.stop(deadline: 2) }
        let anonymous = try curl(["--cacert", pki.caCertificate, "https://127.0.0.1:\(try #require(plain.tcpPort))/whoami"])
        #expect(anonymous.output.hasPrefix("tcp 127.0.0.1:"), "\(anonymous.output)")
    }
}
