import COpenSSL
import Foundation

/// What the daemon reports about a certificate: its subject (RFC 2253, `CN=client-a,O=Example`,
/// the form operators write in configuration), its validity window as Unix times, and its
/// SHA-256 fingerprint (what `openssl x509 -fingerprint -sha256` prints, without colons). A
/// value type; `Sendable`. It keeps no pointer: the certificate is only borrowed while read.
public struct CertificateFacts: Sendable, Equatable {
    public var subject: String
    public var notBefore: Int64
    public var notAfter: Int64
    public var sha256: String

    /// Reads `certificate` (an `X509 *` the caller keeps owning, as every `get0` in OpenSSL
    /// returns it); nil when a field cannot be read.
    init?(borrowing certificate: OpaquePointer) {
        guard let subject = CertificateFacts.subject(of: certificate),
              let start = X509_get0_notBefore(certificate).flatMap(CertificateFacts.unixTime),
              let end = X509_get0_notAfter(certificate).flatMap(CertificateFacts.unixTime) else { return nil }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(certificate, EVP_sha256(), &digest, &length) == 1 else { return nil }
        self.subject = subject
        notBefore = start
        notAfter = end
        sha256 = digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }

    /// The subject name in RFC 2253 form (most specific first, `,` between attributes).
    static func subject(of certificate: OpaquePointer) -> String? {
        guard let name = X509_get_subject_name(certificate) else { return nil }
        // A memory BIO owned here alone, freed on every path (BIO_free(3)).
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, registryd_XN_FLAG_RFC2253) >= 0 else { return nil }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            let n = BIO_read(bio, &chunk, Int32(chunk.count))
            guard n > 0 else { break }
            bytes += chunk[0..<Int(n)]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// An ASN.1 time as seconds since 1970 (UTC).
    static func unixTime(_ time: UnsafePointer<ASN1_TIME>) -> Int64? {
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Int64(timegm(&parts))
    }

    /// `seconds` since 1970 as `2026-12-06T10:00:00Z`, for messages.
    static func text(_ seconds: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }
}
