import COpenSSL
import Foundation

/// SHA-256 through OpenSSL's EVP interface, streaming, so that a large artifact is hashed in
/// fixed-size chunks rather than read whole.
public enum SHA256 {
    /// The lowercase hex digest of `bytes`.
    public static func hex(of bytes: some Collection<UInt8>) -> String {
        let digest = Array(bytes).withUnsafeBytes { raw -> [UInt8] in
            var out = [UInt8](repeating: 0, count: 32)
            var length: UInt32 = 0
            // EVP_Digest is a one-shot wrapper over EVP_DigestInit/Update/Final (OpenSSL 3 docs).
            EVP_Digest(raw.baseAddress, raw.count, &out, &length, EVP_sha256(), nil)
            return out
        }
        return hexString(digest)
    }

    /// The digest of the file at `path` and the number of bytes hashed.
    public static func file(at path: String) throws(RegistryError) -> (hex: String, size: Int64) {
        guard let context = EVP_MD_CTX_new() else {
            throw RegistryError(.system, "cannot allocate a sha-256 context")
        }
        // Freed exactly once (EVP_MD_CTX_free, OpenSSL 3 docs).
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            throw RegistryError(.system, "cannot initialise sha-256")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw RegistryError(.verificationFailed, "cannot read '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var total: Int64 = 0
        while true {
            let n = read(fd, buffer, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw RegistryError(.verificationFailed, "cannot read '\(path)': \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            EVP_DigestUpdate(context, buffer, n)
            total += Int64(n)
        }
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return (hexString(out), total)
    }

    static func hexString(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
