import Foundation
import Glibc
import Testing
@testable import Registry

/// Certificate rotation on the real `registryd` process while 8 threads predict over HTTPS
/// (Tests/Clients/https_load.py): by SIGHUP, and by the files changing with no signal (as
/// Kubernetes rotates a mounted secret). No request fails; connections opened after the new
/// certificate is in force present it; a pair that does not load is refused and the old one stays.
@Suite("TLS certificate rotation", .serialized)
struct TLSRotationTests {
    /// A real registryd serving digits over HTTPS from `tls/server.pem` and `tls/server.key`.
    final class HTTPSDaemon {
        let temp = TempDirectory()
        let pki: TestPKI
        let first: TestPKI.Pair
        var configDirectory: String { "\(temp.path)/registry.d" }
        var tls: String { "\(temp.path)/tls" }
        var logPath: String { "\(temp.path)/registryd.log" }
        let process = Process()
        private(set) var port = 0

        init() throws {
            pki = try TestPKI(in: temp)
            first = try pki.issue("first", subject: "/CN=localhost")
            try FileManager.default.createDirectory(atPath: tls, withIntermediateDirectories: true)
            try install(first)
            try dropAtomically(root: "\(temp.path)/models", model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
            try writeConfig(certificate: "../tls/server.pem", key: "../tls/server.key")
            FileManager.default.createFile(atPath: logPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: DaemonProcessTests.binary)
            process.arguments = ["--config", configDirectory]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: logPath)
            try process.run()
            guard waitFor(timeout: 60, { listenPort() != nil }), let port = listenPort() else {
                throw TestFailure("registryd did not get ready: \(log)")
            }
            self.port = port
        }

        deinit {
            if process.isRunning { _ = terminate(process) }
        }

        func writeConfig(certificate: String, key: String) throws {
            try FileManager.default.createDirectory(atPath: configDirectory, withIntermediateDirectories: true)
            let json = #"{"model_root": "../models", "database": "../catalog.sqlite", "control_socket": "../s.sock", "listen": "127.0.0.1:0", "#
                + #""tls_certificate": "\#(certificate)", "tls_private_key": "\#(key)", "settle_seconds": 0.2}"#
            try Data(json.utf8).write(to: URL(fileURLWithPath: "\(configDirectory)/registryd.json"))
        }

        /// Puts `pair` in place of `tls/<name>.pem` and `.key` (each written beside, then renamed
        /// over the old one: a reader never sees half a file), the certificate first.
        func install(_ pair: TestPKI.Pair, name: String = "server", certificate: Bool = true, key: Bool = true) throws {
            for (source, target, wanted) in [(pair.certificate, "\(tls)/\(name).pem", certificate), (pair.key, "\(tls)/\(name).key", key)] where wanted {
                let staging = target + ".new"
                try? FileManager.default.removeItem(atPath: staging)
                try FileManager.default.copyItem(atPath: source, toPath: staging)
                chmod(staging, 0o600)
                guard rename(staging, target) == 0 else { throw TestFailure("rename \(staging): \(String(cString: strerror(errno)))") }
            }
        }

        var log: String { String(decoding: FileManager.default.contents(atPath: logPath) ?? Data(), as: UTF8.self) }

        private func listenPort() -> Int? {
            guard let line = log.split(separator: "\n").first(where: { $0.contains("registryd ready") }),
                  let range = line.range(of: "listen=127.0.0.1:") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }

        func metrics() throws -> String { try tlsMetricsText(port: port, pki: pki) }

        /// Waits until the certificate in force is `certificate` (as `/metrics` reports it).
        func waitUntilServing(_ certificate: String) throws -> Bool {
            let fingerprint = try pki.fingerprint(certificate)
            return waitFor(timeout: 30) { ((try? metrics()) ?? "").contains("sha256=\"\(fingerprint)\"") }
        }
    }

    /// Tests/Clients/https_load.py running against a daemon.
    final class Load {
        let control: String
        let process = Process()
        private let output = Pipe()

        init(_ daemon: HTTPSDaemon) throws {
            control = "\(daemon.temp.path)/load"
            try FileManager.default.createDirectory(atPath: control, withIntermediateDirectories: true)
            process.executableURL = URL(fileURLWithPath: "\(repositoryRoot)/.venv-clients/bin/python")
            process.arguments = ["\(repositoryRoot)/Tests/Clients/https_load.py", "127.0.0.1:\(daemon.port)", daemon.pki.caCertificate,
                                 "\(fixtures)/digits_test.json", control]
            process.standardOutput = output
            process.standardError = output
            try process.run()
            guard waitFor(timeout: 60, { FileManager.default.fileExists(atPath: "\(control)/running") }) else {
                throw TestFailure("the 8 threads did not start predicting")
            }
        }

        deinit {
            if process.isRunning { process.terminate() }
        }

        var progress: [String: Any] {
            guard let data = FileManager.default.contents(atPath: "\(control)/progress") else { return [:] }
            return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        }

        /// Tells the threads which certificate every new connection must present from now on,
        /// then waits until they have opened `connections` of them.
        func rotated(to fingerprint: String, connections: Int = 16) -> Bool {
            FileManager.default.createFile(atPath: "\(control)/rotated", contents: Data(fingerprint.utf8))
            return waitFor(timeout: 60) { (progress["connections_after_rotation"] as? Int ?? 0) >= connections }
        }

        /// Stops the threads; their totals.
        func finish() throws -> [String: Any] {
            FileManager.default.createFile(atPath: "\(control)/stop", contents: nil)
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let text = String(decoding: data, as: UTF8.self)
            guard let line = text.split(separator: "\n").last, let totals = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TestFailure("https_load.py said: \(text)")
            }
            return totals
        }
    }

    /// What must hold of the load's totals: requests served, none failed, none answered wrong, and
    /// every connection opened after the rotation given the new certificate.
    func expectClean(_ totals: [String: Any], sawBoth fingerprints: [String]) {
        #expect(totals["failures"] as? Int == 0, "\(totals)")
        #expect(totals["wrong_labels"] as? Int == 0, "\(totals)")
        #expect((totals["requests"] as? Int ?? 0) > 100, "\(totals)")
        #expect(totals["stale_after_rotation"] as? Int == 0, "\(totals)")
        let seen = Set((totals["fingerprints"] as? [String: Int] ?? [:]).keys)
        #expect(seen == Set(fingerprints), "\(totals)")
        print("rotation under load: \(totals["requests"] ?? 0) requests, \(totals["failures"] ?? 0) failed, \(totals["connections"] ?? 0) connections "
              + "(\(totals["connections_after_rotation"] ?? 0) after the rotation, \(totals["stale_after_rotation"] ?? 0) with the old certificate)")
    }

    @Test("rotation by SIGHUP while 8 threads predict over HTTPS: zero failed requests, and connections opened after the reload see the new certificate")
    func sighup() throws {
        let daemon = try HTTPSDaemon()
        let load = try Load(daemon)
        let second = try daemon.pki.issue("second", subject: "/CN=localhost")
        // New paths, which the file watch does not look at: only the signal can apply them.
        try daemon.install(second, name: "second")
        try daemon.writeConfig(certificate: "../tls/second.pem", key: "../tls/second.key")
        kill(daemon.process.processIdentifier, SIGHUP)
        #expect(try daemon.waitUntilServing(second.certificate), "\(daemon.log)")
        #expect(daemon.log.contains("tls certificate reloaded") && daemon.log.contains("trigger=reload"))
        let secondPrint = try daemon.pki.fingerprint(second.certificate)
        #expect(load.rotated(to: secondPrint), "\(load.progress)")
        #expect(try servedFingerprint(port: daemon.port, pki: daemon.pki) == secondPrint)
        expectClean(try load.finish(), sawBoth: [try daemon.pki.fingerprint(daemon.first.certificate), secondPrint])
        #expect(terminate(daemon.process))
    }

    @Test("rotation by the files changing, no signal: a certificate written before its key is refused and the old pair keeps serving; once the key follows, the new pair is in force; zero failed requests throughout")
    func filesChange() throws {
        let daemon = try HTTPSDaemon()
        let load = try Load(daemon)
        let firstPrint = try daemon.pki.fingerprint(daemon.first.certificate)
        let second = try daemon.pki.issue("second", subject: "/CN=localhost")
        try daemon.install(second, key: false)
        #expect(waitFor(timeout: 30) { metricValue((try? daemon.metrics()) ?? "", #"registryd_tls_certificate_reloads_total{result="refused"}"#) == 1 },
                "\(daemon.log)")
        #expect(daemon.log.contains("tls certificate reload refused") && daemon.log.contains("does not match private key"))
        #expect(try servedFingerprint(port: daemon.port, pki: daemon.pki) == firstPrint)
        try daemon.install(second, certificate: false)
        #expect(try daemon.waitUntilServing(second.certificate), "\(daemon.log)")
        #expect(daemon.log.contains("tls certificate reloaded") && daemon.log.contains("trigger=\"file changed\""))
        let secondPrint = try daemon.pki.fingerprint(second.certificate)
        #expect(load.rotated(to: secondPrint), "\(load.progress)")
        #expect(try servedFingerprint(port: daemon.port, pki: daemon.pki) == secondPrint)
        expectClean(try load.finish(), sawBoth: [firstPrint, secondPrint])
        #expect(terminate(daemon.process))
    }
}
