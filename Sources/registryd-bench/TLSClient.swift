import CBenchOpenSSL
import Glibc

/// The load generator's TLS client context: TLS 1.2 or 1.3, the server's chain verified against
/// `caFile` (the host name is not checked: the benchmarks talk to 127.0.0.1 with a certificate
/// they made), ALPN `http/1.1`, and read-ahead, so that one `read(2)` takes every record the
/// kernel holds (``TLSClientSession/read(_:_:)`` drains what OpenSSL buffered, which `poll`
/// cannot see).
///
/// Ownership: owns its `SSL_CTX`, freed in `deinit`; each session holds its own reference.
/// Thread-safety: `@unchecked Sendable`: immutable once built, and OpenSSL allows `SSL_new` on
/// one context from many threads ("objects are thread-safe as long as the API's being invoked
/// don't modify the object", openssl-threads(7)); each event loop makes its own sessions.
final class TLSClientContext: @unchecked Sendable {
    let pointer: OpaquePointer

    init(caFile: String) {
        guard let context = SSL_CTX_new(TLS_client_method()) else { fail("cannot create a TLS client context") }
        pointer = context
        guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else { fail("cannot load the CA file '\(caFile)'") }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        let protocols: [UInt8] = [8] + Array("http/1.1".utf8)
        _ = protocols.withUnsafeBufferPointer { SSL_CTX_set_alpn_protos(context, $0.baseAddress, UInt32($0.count)) }
        _ = registryd_bench_SSL_CTX_set_read_ahead(context, 1)
    }

    deinit {
        SSL_CTX_free(pointer)
    }
}

/// A session to resume a later connection with (`SSL_SESSION`, owned: freed in `deinit`).
/// Used by one thread.
final class TLSSavedSession {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { SSL_SESSION_free(pointer) }
}

/// One client connection's TLS session over a connected socket. The handshake is blocking (the
/// socket is still blocking then); afterwards the socket is made non-blocking (for the event
/// loops), and reads and writes report "would block" as 0. Ownership: owns its `SSL`, freed in `deinit` (the socket
/// stays the caller's). Used by one thread at a time (openssl-threads(7)).
final class TLSClientSession {
    let ssl: OpaquePointer

    /// Connects over `fd` (blocking), resuming `resume` when given, then makes the socket
    /// non-blocking unless told not to; nil when the handshake fails.
    init?(context: TLSClientContext, fd: Int32, resume: TLSSavedSession? = nil, nonBlocking: Bool = true) {
        ERR_clear_error()
        guard let ssl = SSL_new(context.pointer) else { return nil }
        self.ssl = ssl
        guard SSL_set_fd(ssl, fd) == 1 else { return nil }
        if let resume { SSL_set_session(ssl, resume.pointer) }
        guard SSL_connect(ssl) == 1 else {
            ERR_clear_error()
            return nil
        }
        if nonBlocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }

    deinit {
        SSL_free(ssl)
    }

    /// Whether OpenSSL holds bytes read from the socket but not yet returned.
    var hasPending: Bool { SSL_has_pending(ssl) == 1 }

    /// Whether the handshake resumed a saved session.
    var resumed: Bool { SSL_session_reused(ssl) == 1 }

    /// The session to resume the next connection with (TLS 1.3 tickets arrive after the
    /// handshake: take it once an answer has been read).
    func saved() -> TLSSavedSession? {
        SSL_get1_session(ssl).map(TLSSavedSession.init)
    }

    /// Bytes written, 0 when the socket takes nothing now, -1 when the connection broke. A write
    /// that would block is retried with the same bytes, as OpenSSL requires.
    func write(_ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        ERR_clear_error()
        let n = SSL_write(ssl, bytes, Int32(count))
        if n > 0 { return Int(n) }
        let error = SSL_get_error(ssl, n)
        return error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ ? 0 : -1
    }

    /// Bytes read into `buffer`, draining every record OpenSSL holds; 0 when nothing can be read
    /// now, -1 at the end of the connection or on an error.
    func read(_ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        var total = 0
        while total < count {
            ERR_clear_error()
            let n = SSL_read(ssl, buffer + total, Int32(count - total))
            if n > 0 {
                total += Int(n)
                if SSL_has_pending(ssl) != 1 { break }
                continue
            }
            let error = SSL_get_error(ssl, n)
            if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { break }
            return total > 0 ? total : -1
        }
        return total
    }

    /// Sends close_notify (once, not waiting for the server's).
    func shutdown() {
        ERR_clear_error()
        SSL_shutdown(ssl)
        ERR_clear_error()
    }
}
