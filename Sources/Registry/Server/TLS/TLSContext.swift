import COpenSSL
import Foundation
import Glibc

/// One server-side OpenSSL context (`SSL_CTX`): the certificate chain and private key in force
/// on the TCP listener, TLS 1.2 as the floor (OpenSSL negotiates the highest version both sides
/// speak, so TLS 1.3 whenever the client has it), forward-secret AEAD ciphers for TLS 1.2,
/// ALPN `http/1.1`, session resumption (tickets, and a session cache for TLS 1.2 clients that
/// use session IDs), and, with a client CA, mutual TLS: a client certificate signed by that CA
/// is required.
///
/// ``load(_:now:)`` refuses, naming the file and the problem, a private key that its group or
/// others can read, a certificate that does not match its key, a certificate that has expired or
/// is not valid yet, and files that are missing or hold no PEM.
///
/// Ownership: it owns its `SSL_CTX` and frees it in `deinit`. Each `SSL` made from it holds a
/// reference of its own (`SSL_new` takes one and `SSL_free` drops it, ssl/ssl_lib.c; SSL_CTX_free(3):
/// "decrements the reference count ... and frees up the allocated memory if the reference count
/// has reached 0"), so the connections made from a context that a reload replaced keep using it
/// until they close.
///
/// Thread-safety: `@unchecked Sendable` because it is immutable once ``load(_:now:)`` returns:
/// nothing changes the `SSL_CTX` after it is published, and openssl-threads(7) says objects "are
/// thread-safe as long as the API's being invoked don't modify the object". Many workers call
/// `SSL_new` on it at once; what that changes inside (the reference count, the session cache) is
/// guarded by OpenSSL's own locks.
final class TLSContext: @unchecked Sendable {
    let pointer: OpaquePointer
    /// The server certificate's subject, validity and fingerprint.
    let certificate: CertificateFacts
    /// Whether clients must present a certificate (`tls_client_ca`).
    let requiresClientCertificate: Bool

    /// TLS 1.2's cipher list: ECDHE key exchange with AEAD ciphers only (the "intermediate"
    /// profile of Mozilla's server-side TLS guidelines).
    static let tls12Ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    /// TLS 1.3's suites (all AEAD), in the same profile's order: AES-128-GCM first, which costs
    /// fewer rounds per record than OpenSSL's default first choice, AES-256-GCM.
    static let tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    /// Names this server's sessions, so that a session is resumed only here; OpenSSL refuses to
    /// resume without one when client certificates are verified (SSL_CTX_set_session_id_context(3)).
    private static let sessionContext = Array("registryd".utf8)

    private init(pointer: OpaquePointer, certificate: CertificateFacts, requiresClientCertificate: Bool) {
        self.pointer = pointer
        self.certificate = certificate
        self.requiresClientCertificate = requiresClientCertificate
    }

    deinit {
        SSL_CTX_free(pointer)
    }

    /// Reads and checks `files` and builds a context from them; `now` is the time validity is
    /// checked against (seconds since 1970).
    static func load(_ files: TLSFiles, now: Double = Date().timeIntervalSince1970) throws(RegistryError) -> TLSContext {
        try checkPrivateKeyFile(files.privateKey)
        try checkReadable(files.certificate, "certificate", key: "tls_certificate")
        if let ca = files.clientCA { try checkReadable(ca, "client CA", key: "tls_client_ca") }
        OpenSSLErrorQueue.clear()
        // Owned from here by `owner` (freed by its deinit on every path below, throws included).
        guard let raw = SSL_CTX_new(TLS_server_method()) else {
            throw RegistryError(.system, "cannot create a tls context: \(OpenSSLErrorQueue.message())")
        }
        let owner = Owner(raw)
        try configureProtocol(raw)
        let certificate = try loadKeyPair(raw, files, now: now)
        if let ca = files.clientCA { try requireClientCertificates(raw, ca: ca) }
        return TLSContext(pointer: owner.release(), certificate: certificate, requiresClientCertificate: files.clientCA != nil)
    }

    /// Versions, ciphers, modes, resumption and ALPN: the same for every context.
    private static func configureProtocol(_ context: OpaquePointer) throws(RegistryError) {
        guard registryd_SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) == 1,
              SSL_CTX_set_cipher_list(context, tls12Ciphers) == 1, SSL_CTX_set_ciphersuites(context, tls13Suites) == 1 else {
            throw RegistryError(.system, "cannot configure tls versions and ciphers: \(OpenSSLErrorQueue.message())")
        }
        // No renegotiation (a client could make the server redo handshakes at will), the
        // server's cipher order, no compression (CRIME).
        SSL_CTX_set_options(context, registryd_SSL_OP_NO_RENEGOTIATION | registryd_SSL_OP_CIPHER_SERVER_PREFERENCE | registryd_SSL_OP_NO_COMPRESSION)
        // Partial writes: `SSL_write` reports each record written, as `write(2)` reports bytes,
        // which is what ``Transport/write(_:)`` promises. Moving buffer: a write retried after
        // WANT_WRITE may come from another address holding the same bytes.
        _ = registryd_SSL_CTX_set_mode(context, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        // Read ahead: one `read(2)` takes every record the kernel holds instead of one record
        // per call. ``TLSTransport`` drains what OpenSSL buffered before it parks a connection,
        // since epoll cannot see those bytes.
        _ = registryd_SSL_CTX_set_read_ahead(context, 1)
        _ = registryd_SSL_CTX_set_session_cache_mode(context, Int(SSL_SESS_CACHE_SERVER))
        // One TLS 1.3 ticket per full handshake instead of two: a client resumes with one, and
        // each costs an encryption and bytes on every new connection.
        SSL_CTX_set_num_tickets(context, 1)
        _ = sessionContext.withUnsafeBufferPointer { SSL_CTX_set_session_id_context(context, $0.baseAddress, UInt32($0.count)) }
        SSL_CTX_set_alpn_select_cb(context, { _, out, outLength, offered, offeredLength, _ in
            TLSContext.selectHTTP11(out, outLength, offered, offeredLength)
        }, nil)
    }

    /// ALPN: `http/1.1` when the client offers it. A client that offers protocols but not this
    /// one (an HTTP/2-only client) is refused with `no_application_protocol` (RFC 7301, 3.2)
    /// rather than answered in a protocol it did not ask for.
    private static func selectHTTP11(_ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, _ outLength: UnsafeMutablePointer<UInt8>?,
                                     _ offered: UnsafePointer<UInt8>?, _ offeredLength: UInt32) -> Int32 {
        guard let out, let outLength, let offered else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        let wanted = Array("http/1.1".utf8)
        var index = 0
        let end = Int(offeredLength)
        // The client's list: each protocol is one length byte, then its name.
        while index < end {
            let length = Int(offered[index])
            let name = index + 1
            guard name + length <= end else { break }
            if length == wanted.count && (0..<length).allSatisfy({ offered[name + $0] == wanted[$0] }) {
                out.pointee = offered + name
                outLength.pointee = UInt8(length)
                return SSL_TLSEXT_ERR_OK
            }
            index = name + length
        }
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }

    /// The certificate chain and the key, checked against each other and against the clock.
    private static func loadKeyPair(_ context: OpaquePointer, _ files: TLSFiles, now: Double) throws(RegistryError) -> CertificateFacts {
        guard SSL_CTX_use_certificate_chain_file(context, files.certificate) == 1 else {
            throw RegistryError(.invalidConfiguration, "certificate '\(files.certificate)' (tls_certificate) cannot be loaded: "
                                + OpenSSLErrorQueue.message(fallback: "no PEM certificate in it"))
        }
        // Borrowed from the context, which keeps owning it (SSL_CTX_get0_certificate(3)).
        guard let leaf = SSL_CTX_get0_certificate(context), let facts = CertificateFacts(borrowing: leaf) else {
            throw RegistryError(.invalidConfiguration, "certificate '\(files.certificate)' (tls_certificate) cannot be read: \(OpenSSLErrorQueue.message())")
        }
        let mismatch = "certificate '\(files.certificate)' does not match private key '\(files.privateKey)'"
        guard SSL_CTX_use_PrivateKey_file(context, files.privateKey, SSL_FILETYPE_PEM) == 1 else {
            let codes = OpenSSLErrorQueue.drain()
            // OpenSSL checks the key against the certificate as it loads it.
            if codes.contains(where: { ERR_GET_REASON($0) == X509_R_KEY_VALUES_MISMATCH }) {
                throw RegistryError(.invalidConfiguration, mismatch + " (key values mismatch)")
            }
            let reason = codes.isEmpty ? "no PEM private key in it" : codes.map(OpenSSLErrorQueue.text(of:)).joined(separator: "; ")
            throw RegistryError(.invalidConfiguration, "private key '\(files.privateKey)' (tls_private_key) cannot be loaded: \(reason)")
        }
        // A key of another type (an RSA key beside an EC certificate) loads, and fails here.
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw RegistryError(.invalidConfiguration, mismatch + " (\(OpenSSLErrorQueue.message()))")
        }
        if Double(facts.notAfter) <= now {
            throw RegistryError(.invalidConfiguration, "certificate '\(files.certificate)' expired on \(CertificateFacts.text(facts.notAfter)) (subject \(facts.subject))")
        }
        if Double(facts.notBefore) > now {
            throw RegistryError(.invalidConfiguration, "certificate '\(files.certificate)' is not valid before \(CertificateFacts.text(facts.notBefore)) (subject \(facts.subject))")
        }
        return facts
    }

    /// Mutual TLS: verify client certificates against `ca`, require one, and name the CA in the
    /// handshake so that clients holding several certificates pick the right one.
    private static func requireClientCertificates(_ context: OpaquePointer, ca: String) throws(RegistryError) {
        guard SSL_CTX_load_verify_locations(context, ca, nil) == 1 else {
            throw RegistryError(.invalidConfiguration, "client CA '\(ca)' (tls_client_ca) cannot be loaded: " + OpenSSLErrorQueue.message(fallback: "no PEM certificate in it"))
        }
        // The list's ownership passes to the context (SSL_CTX_set_client_CA_list(3): "set0" semantics).
        guard let names = SSL_load_client_CA_file(ca) else {
            throw RegistryError(.invalidConfiguration, "client CA '\(ca)' (tls_client_ca) holds no certificate: " + OpenSSLErrorQueue.message(fallback: "no PEM certificate in it"))
        }
        SSL_CTX_set_client_CA_list(context, names)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
    }

    /// A private key is a secret: refused when its group or others may read it, whoever runs
    /// the daemon (a key that leaked to another account cannot be taken back).
    private static func checkPrivateKeyFile(_ path: String) throws(RegistryError) {
        try checkReadable(path, "private key", key: "tls_private_key")
        var info = stat()
        guard stat(path, &info) == 0 else { throw unreadable(path, "private key", key: "tls_private_key") }
        let mode = info.st_mode & 0o777
        guard mode & 0o044 == 0 else {
            let readers = mode & 0o044 == 0o044 ? "its group and others" : mode & 0o040 != 0 ? "its group" : "others"
            throw RegistryError(.invalidConfiguration, "private key '\(path)' (tls_private_key) is readable by \(readers) "
                                + "(mode \(String(format: "%04o", mode))); make it readable by its owner alone (chmod 600)")
        }
    }

    private static func checkReadable(_ path: String, _ what: String, key: String) throws(RegistryError) {
        guard access(path, R_OK) == 0 else { throw unreadable(path, what, key: key) }
    }

    /// `errno` of the call that failed, in the message.
    private static func unreadable(_ path: String, _ what: String, key: String) -> RegistryError {
        RegistryError(.invalidConfiguration, "\(what) '\(path)' (\(key)) cannot be read: \(String(cString: strerror(errno)).lowercased())")
    }

    /// Frees a context that never got published (a check failed), or hands it over.
    private final class Owner {
        private var pointer: OpaquePointer?
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
        func release() -> OpaquePointer {
            defer { pointer = nil }
            return pointer!
        }
        deinit { if let pointer { SSL_CTX_free(pointer) } }
    }
}
