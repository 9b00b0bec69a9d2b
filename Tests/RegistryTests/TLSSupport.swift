import Foundation
import Glibc
import Testing
@testable import Registry

/// Certificates made with the `openssl` command in a test's own directory: a CA; server
/// certificates for 127.0.0.1 and localhost signed by it; client certificates from it or from a
/// second CA; an expired one (signed by `openssl ca` with dates in the past, which `openssl x509`
/// of OpenSSL 3.0 cannot set). EC P-256 keys throughout: quick to make.
final class TestPKI {
    let directory: String
    static let openssl = "/usr/bin/openssl"

    /// A certificate and its key, as files.
    struct Pair {
        var certificate: String
        var key: String
    }

    /// Makes the CA (`ca.pem`) in `<temp>/pki`.
    init(in temp: TempDirectory) throws {
        directory = "\(temp.path)/pki"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try makeCA("ca", subject: "/O=registryd tests/CN=test CA")
    }

    var caCertificate: String { "\(directory)/ca.pem" }

    /// Runs `openssl` in the directory; throws with its output when it fails.
    @discardableResult
    func openssl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestPKI.openssl)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw TestFailure("openssl \(arguments.joined(separator: " ")): \(text)") }
        return text
    }

    /// A self-signed CA named `name` (`<name>.pem`, `<name>.key`).
    func makeCA(_ name: String, subject: String) throws {
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subject,
                     "-days", "30", "-keyout", "\(name).key", "-out", "\(name).pem"])
    }

    /// A certificate for `subject` signed by the CA `ca`, with a key only its owner can read.
    /// Server certificates name 127.0.0.1 and localhost.
    func issue(_ name: String, subject: String, ca: String = "ca", server: Bool = true, days: Int = 30) throws -> Pair {
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subject,
                     "-keyout", "\(name).key", "-out", "\(name).csr"])
        let extensions = server ? "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n" : "extendedKeyUsage=clientAuth\n"
        try Data(extensions.utf8).write(to: URL(fileURLWithPath: "\(directory)/\(name).ext"))
        try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key", "-CAcreateserial",
                     "-days", String(days), "-extfile", "\(name).ext", "-out", "\(name).pem"])
        chmod("\(directory)/\(name).key", 0o600)
        return Pair(certificate: "\(directory)/\(name).pem", key: "\(directory)/\(name).key")
    }

    /// A server certificate whose validity ended in 2020.
    func issueExpired(_ name: String) throws -> Pair {
        try FileManager.default.createDirectory(atPath: "\(directory)/db", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(directory)/db/index.txt", contents: Data())
        try Data("1000\n".utf8).write(to: URL(fileURLWithPath: "\(directory)/db/serial"))
        let config = """
            [ca]
            default_ca = local
            [local]
            database = db/index.txt
            serial = db/serial
            new_certs_dir = db
            default_md = sha256
            policy = any
            [any]
            commonName = supplied
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: "\(directory)/ca.cnf"))
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                     "-keyout", "\(name).key", "-out", "\(name).csr"])
        try openssl(["ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "\(name).csr",
                     "-out", "\(name).pem", "-startdate", "20200101000000Z", "-enddate", "20200102000000Z"])
        chmod("\(directory)/\(name).key", 0o600)
        return Pair(certificate: "\(directory)/\(name).pem", key: "\(directory)/\(name).key")
    }

    /// The certificate's SHA-256 fingerprint: lowercase hex, no colons (as `/metrics` prints it).
    func fingerprint(_ certificate: String) throws -> String {
        let text = try openssl(["x509", "-in", certificate, "-noout", "-fingerprint", "-sha256"])
        return String(text.split(separator: "=").last ?? "").replacingOccurrences(of: ":", with: "")
            .trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }
}

extension DaemonConfig {
    /// HTTPS on an ephemeral port with `pair`, and mutual TLS when `clientCA` is given.
    mutating func useTLS(_ pair: TestPKI.Pair, clientCA: String? = nil) {
        listen = "127.0.0.1:0"
        tlsCertificate = pair.certificate
        tlsPrivateKey = pair.key
        tlsClientCA = clientCA
    }
}

/// `openssl s_client` to 127.0.0.1:`port` with `arguments`. With no `request` its stdin is
/// empty, so it closes once the handshake is over; with one, it sends it and reads until the
/// server closes (send `Connection: close`). Output and errors together.
func sClient(port: Int, _ arguments: [String], request: String? = nil) throws -> (status: Int32, output: String) {
    try runWithInput([TestPKI.openssl, "s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost"] + arguments
                     + (request == nil ? [] : ["-ign_eof"]), input: Array((request ?? "").utf8))
}

/// `curl -sS` with `arguments`; `-w` can append the status.
func curl(_ arguments: [String]) throws -> (status: Int32, output: String) {
    try run(["/usr/bin/curl", "-sS", "--max-time", "20"] + arguments)
}

/// The Python of `.venv-clients` (tritonclient, numpy) running a script of Tests/Clients.
func clientScript(_ script: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    try run(["\(repositoryRoot)/.venv-clients/bin/python", "\(repositoryRoot)/Tests/Clients/\(script)"] + arguments)
}

/// The certificate fingerprint the server at `port` presents to a new connection.
func servedFingerprint(port: Int, pki: TestPKI, clientPair: TestPKI.Pair? = nil) throws -> String {
    var arguments = ["-CAfile", pki.caCertificate]
    if let clientPair { arguments += ["-cert", clientPair.certificate, "-key", clientPair.key] }
    let handshake = try sClient(port: port, arguments + ["-showcerts"])
    guard let start = handshake.output.range(of: "-----BEGIN CERTIFICATE-----"),
          let end = handshake.output.range(of: "-----END CERTIFICATE-----", range: start.upperBound..<handshake.output.endIndex) else {
        throw TestFailure("no certificate from port \(port): \(handshake.output)")
    }
    let path = "\(pki.directory)/served-\(UUID().uuidString.prefix(8)).pem"
    try Data((String(handshake.output[start.lowerBound..<end.upperBound]) + "\n").utf8).write(to: URL(fileURLWithPath: path))
    return try pki.fingerprint(path)
}

/// A TCP connection to 127.0.0.1:`port`, raw (for bytes that are not TLS).
func rawTCPConnect(_ port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let ok = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard ok == 0 else {
        let text = String(cString: strerror(errno))
        close(fd)
        throw TestFailure("connect to port \(port): \(text)")
    }
    return fd
}

/// The daemon's `/metrics` over HTTPS, read with curl.
func tlsMetricsText(port: Int, pki: TestPKI, clientPair: TestPKI.Pair? = nil) throws -> String {
    var arguments = ["--cacert", pki.caCertificate, "https://127.0.0.1:\(port)/metrics"]
    if let clientPair { arguments += ["--cert", clientPair.certificate, "--key", clientPair.key] }
    return try curl(arguments).output
}

/// The value of one sample in Prometheus text (`name{labels} value`), or nil.
func metricValue(_ text: String, _ sample: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
        return Double(line.dropFirst(sample.count + 1))
    }
    return nil
}
