import Foundation
import Glibc
import Testing
@testable import Registry

/// TLS configuration: the keys, and the files refused at start and at a reload, each naming the
/// file and the problem, with the certificate in force kept on a refused reload.
@Suite("TLS configuration", .serialized)
struct TLSConfigTests {
    /// A registry configured for HTTPS with `pair`, not started.
    private func registry(_ pki: (TestPKI) throws -> TestPKI.Pair) throws -> (TestRegistry, TestPKI) {
        let registry = TestRegistry()
        let authority = try TestPKI(in: registry.temp)
        registry.config.useTLS(try pki(authority))
        try registry.makeModelDirectory("digits")
        return (registry, authority)
    }

    private func startError(_ registry: TestRegistry) -> String {
        let error = #expect(throws: RegistryError.self) { try registry.start() }
        return error?.message ?? ""
    }

    @Test("refuses to start with a private key its group or others can read, naming the file and the mode")
    func readableKey() throws {
        let (registry, _) = try registry { try $0.issue("server", subject: "/CN=localhost") }
        let key = try #require(registry.config.tlsPrivateKey)
        chmod(key, 0o644)
        #expect(startError(registry) == "private key '\(key)' (tls_private_key) is readable by its group and others (mode 0644); make it readable by its owner alone (chmod 600)")
        chmod(key, 0o640)
        #expect(startError(registry).contains("is readable by its group (mode 0640)"))
        chmod(key, 0o400)
        try registry.start()
        #expect(registry.daemon?.tcpPort != nil)
    }

    @Test("refuses to start with a certificate that does not match its key, naming both files")
    func mismatchedPair() throws {
        let (registry, pki) = try registry { try $0.issue("server", subject: "/CN=localhost") }
        let other = try pki.issue("other", subject: "/CN=localhost")
        registry.config.tlsPrivateKey = other.key
        let message = startError(registry)
        #expect(message.hasPrefix("certificate '\(registry.config.tlsCertificate!)' does not match private key '\(other.key)'"), "\(message)")
    }

    @Test("refuses to start with an expired certificate, naming the file and the date; and with files that are missing or not PEM")
    func expiredAndMissing() throws {
        let (registry, pki) = try registry { try $0.issueExpired("expired") }
        #expect(startError(registry) == "certificate '\(pki.directory)/expired.pem' expired on 2020-01-02T00:00:00Z (subject CN=localhost)")
        let good = try pki.issue("server", subject: "/CN=localhost")
        registry.config.tlsCertificate = "\(pki.directory)/missing.pem"
        registry.config.tlsPrivateKey = good.key
        #expect(startError(registry) == "certificate '\(pki.directory)/missing.pem' (tls_certificate) cannot be read: no such file or directory")
        try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: "\(pki.directory)/junk.pem"))
        registry.config.tlsCertificate = "\(pki.directory)/junk.pem"
        #expect(startError(registry).hasPrefix("certificate '\(pki.directory)/junk.pem' (tls_certificate) cannot be loaded: "))
        registry.config.tlsCertificate = good.certificate
        registry.config.listen = nil
        #expect(startError(registry) == "tls_certificate is set but 'listen' is not: TLS applies to the TCP listener")
    }

    @Test("registryd --check-config checks the certificate files as a start would, exiting 78 naming the file")
    func checkConfig() throws {
        let temp = TempDirectory()
        let pki = try TestPKI(in: temp)
        let pair = try pki.issue("server", subject: "/CN=localhost")
        try FileManager.default.createDirectory(atPath: "\(temp.path)/registry.d", withIntermediateDirectories: true)
        try Data(#"{"model_root": "..", "listen": "127.0.0.1:0", "tls_certificate": "../pki/server.pem", "tls_private_key": "../pki/server.key"}"#.utf8)
            .write(to: URL(fileURLWithPath: "\(temp.path)/registry.d/registryd.json"))
        let ok = try run([DaemonProcessTests.binary, "--check-config", "--config", "\(temp.path)/registry.d"])
        #expect(ok.status == 0 && ok.output.contains("TLS certificate CN=localhost valid until"), "\(ok.output)")
        chmod(pair.key, 0o604)
        let bad = try run([DaemonProcessTests.binary, "--check-config", "--config", "\(temp.path)/registry.d"])
        #expect(bad.status == 78)
        #expect(bad.output.contains("Error: private key '\(pair.key)' (tls_private_key) is readable by others (mode 0604)"), "\(bad.output)")
    }

    @Test("a reload whose certificate files do not load is refused with the reason and recorded; the certificate in force keeps serving; a good pair then applies")
    func refusedReload() throws {
        let temp = TempDirectory()
        let pki = try TestPKI(in: temp)
        let first = try pki.issue("first", subject: "/CN=localhost")
        let second = try pki.issue("second", subject: "/CN=localhost")
        let directory = "\(temp.path)/registry.d"
        try FileManager.default.createDirectory(atPath: "\(temp.path)/models/digits", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func configure(certificate: String, key: String) throws {
            try Data(#"{"model_root": "../models", "database": "../c.sqlite", "control_socket": "../s.sock", "listen": "127.0.0.1:0", "tls_certificate": "\#(certificate)", "tls_private_key": "\#(key)"}"#.utf8)
                .write(to: URL(fileURLWithPath: "\(directory)/registryd.json"))
        }
        try configure(certificate: first.certificate, key: first.key)
        let source = ConfigSource(directory: directory)
        let daemon = try Daemon(config: try source.load(), log: Log(level: .error), source: source)
        try daemon.start()
        defer { daemon.stop() }
        let port = try #require(daemon.tcpPort)
        let firstPrint = try pki.fingerprint(first.certificate)
        #expect(try servedFingerprint(port: port, pki: pki) == firstPrint)

        try configure(certificate: second.certificate, key: first.key)
        let error = #expect(throws: RegistryError.self) { try daemon.reload(actor: "test") }
        #expect(error?.message == "configuration reload refused, the configuration in force stays: tls certificate reload refused, the certificate in force stays: "
                + "certificate '\(second.certificate)' does not match private key '\(first.key)' (key values mismatch)", "\(error?.message ?? "")")
        #expect(try servedFingerprint(port: port, pki: pki) == firstPrint)
        let event = try daemon.catalog.events(actions: ["reload"]).last?.draft
        #expect(event?.after == "refused" && event?.reason.contains("does not match private key") == true, "\(String(describing: event))")

        try configure(certificate: second.certificate, key: second.key)
        let plan = try daemon.reload(actor: "test")
        #expect(plan.changed.contains("tls_certificate") && plan.changed.contains("tls_private_key"), "\(plan)")
        #expect(try servedFingerprint(port: port, pki: pki) == (try pki.fingerprint(second.certificate)))
        let metrics = try tlsMetricsText(port: port, pki: pki)
        #expect(metricValue(metrics, #"registryd_tls_certificate_reloads_total{result="refused"}"#) == 1, "\(metrics)")
        #expect(metricValue(metrics, #"registryd_tls_certificate_reloads_total{result="applied"}"#) == 1, "\(metrics)")
    }

    @Test("the TLS keys: certificate and key go together, a client CA needs them, paths are taken relative to registry.d; new paths apply at a reload, turning HTTPS on or off waits for a restart")
    func keys() throws {
        let base = URL(fileURLWithPath: "/etc/registry.d", isDirectory: true)
        func parse(_ json: String) throws -> DaemonConfig {
            try DaemonConfig.parse(mainFile: "/etc/registry.d/registryd.json", data: Data(json.utf8), base: base)
        }
        let config = try parse(#"{"model_root": "/m", "listen": "0.0.0.0:8443", "tls_certificate": "tls/server.pem", "tls_private_key": "/etc/keys/server.key", "tls_client_ca": "tls/ca.pem"}"#)
        #expect(config.tlsFiles == TLSFiles(certificate: "/etc/registry.d/tls/server.pem", privateKey: "/etc/keys/server.key", clientCA: "/etc/registry.d/tls/ca.pem"))
        #expect(try parse(#"{"model_root": "/m"}"#).tlsFiles == nil)
        let alone = #expect(throws: RegistryError.self) { try parse(#"{"model_root": "/m", "tls_certificate": "c.pem"}"#) }
        #expect(alone?.message == "/etc/registry.d/registryd.json: keys 'tls_certificate' and 'tls_private_key' go together: set both for HTTPS, or neither")
        let caAlone = #expect(throws: RegistryError.self) { try parse(#"{"model_root": "/m", "tls_client_ca": "ca.pem"}"#) }
        #expect(caAlone?.message.contains("key 'tls_client_ca' needs 'tls_certificate' and 'tls_private_key'") == true)

        var moved = config
        moved.tlsCertificate = "/etc/registry.d/tls/new.pem"
        moved.tlsClientCA = nil
        let reload = ConfigReload(current: config, proposed: moved)
        #expect(reload.changed.contains("tls_certificate") && reload.changed.contains("tls_client_ca") && reload.restartRequired.isEmpty)
        #expect(reload.applied.tlsFiles == moved.tlsFiles)
        var off = config
        off.tlsCertificate = nil
        off.tlsPrivateKey = nil
        off.tlsClientCA = nil
        let toggle = ConfigReload(current: config, proposed: off)
        #expect(toggle.restartRequired == ["tls_certificate", "tls_private_key", "tls_client_ca"])
        #expect(toggle.applied.tlsFiles == config.tlsFiles)
    }
}
