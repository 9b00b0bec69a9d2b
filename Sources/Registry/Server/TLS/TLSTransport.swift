import COpenSSL
import Glibc
import Synchronization

/// A ``Transport`` over a TLS session (OpenSSL's `SSL`) on an accepted TCP socket: the server's
/// handshake runs inside ``read(into:)``, one non-blocking step per readiness the poller
/// reports, so a slow or stalled handshake holds no worker and never delays other connections.
///
/// OpenSSL works on the socket itself (`SSL_set_fd`), not through memory BIOs: the socket is
/// already non-blocking, so `SSL_ERROR_WANT_READ` and `WANT_WRITE` say exactly which readiness
/// to wait for in epoll, and the bytes move once between the kernel and OpenSSL's record
/// buffers, with no copy through a BIO pair and no second buffer to flush. What OpenSSL reads
/// ahead is the one thing epoll cannot see: ``read(into:)`` therefore drains every buffered
/// record before it reports "would block", and ``hasPendingInput()`` counts them.
///
/// Plain HTTP sent to this port gets a plain-text `400` that says to use HTTPS, then the close.
///
/// Ownership: it owns its `SSL` (freed by ``close()``, or by `deinit` if never closed) and the
/// socket (closed by ``close()``). Thread-safety: an `SSL` must be used by one thread at a time
/// (openssl-threads(7): "most objects are not safe for simultaneous use"); its owner is the
/// worker that holds the connection, but the stop may close a connection whose worker outlived
/// the deadline, and the reaper marks late ones. So every use of the `SSL` happens under one
/// `Mutex`, taken for one non-blocking call at a time and never across a wait: uncontended
/// except in those two cases. ``shutdownReading()`` touches only the socket.
final class TLSTransport: Transport {
    let descriptor: Int32
    private let peerAddress: String
    private let metrics: TLSMetrics
    private let log: Log

    /// The session's state; `@unchecked Sendable` because its `SSL` is touched only under the
    /// transport's `Mutex` (one thread at a time, as openssl-threads(7) requires).
    private struct Session: ~Copyable, @unchecked Sendable {
        /// Nil once closed.
        var ssl: OpaquePointer?
        var established = false
        /// A fatal error or the peer's close_notify: no more TLS calls but the free.
        var finished = false
        /// The last call needed the socket writable (rather than readable) to progress.
        var needsWritable = false
        /// The reaper shut the read side: the request timeout passed.
        var timedOut = false
        /// A handshake step has run (the client sent something, or left): a connection closed
        /// before that (refused at the cap, closed by the stop) is no failed handshake.
        var attempted = false
        /// The client certificate's subject, once the handshake has completed with one.
        var peerSubject: String?

        deinit {
            if let ssl { SSL_free(ssl) }
        }
    }
    private let session: Mutex<Session>

    /// Takes over `descriptor`, an accepted non-blocking TCP socket, and starts a server-side
    /// session on `context`; nil when OpenSSL cannot (the caller then closes the socket).
    init?(descriptor: Int32, context: TLSContext, peerAddress: String, metrics: TLSMetrics, log: Log) {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.pointer) else { return nil }
        // Owned by `session` from here: freed by its deinit on every path.
        let session = Session(ssl: ssl)
        guard SSL_set_fd(ssl, descriptor) == 1 else { return nil }
        SSL_set_accept_state(ssl)
        self.descriptor = descriptor
        self.peerAddress = peerAddress
        self.metrics = metrics
        self.log = log
        self.session = Mutex(session)
    }

    /// The client certificate's subject (RFC 2253), once a mutual-TLS handshake has completed.
    var peerSubject: String? { session.withLock { $0.peerSubject } }

    var isHandshaking: Bool { session.withLock { !$0.established && !$0.finished } }

    var needsWritable: Bool { session.withLock { $0.needsWritable } }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        var failure: (TLSMetrics.FailureReason, String)?
        let result: TransportResult = session.withLock { session in
            guard let ssl = session.ssl, !session.finished else { return .closed }
            if !session.established {
                switch handshake(ssl, &session) {
                case .done: break
                case .wouldBlock: return .wouldBlock
                case .failed(let reason, let detail):
                    failure = (reason, detail)
                    return .closed
                }
            }
            return readRecords(ssl, &session, into: buffer)
        }
        if let (reason, detail) = failure { metrics.handshakeFailed(reason, peer: peerAddress, detail: detail, log: log) }
        return result
    }

    private enum HandshakeStep {
        case done, wouldBlock
        case failed(TLSMetrics.FailureReason, String)
    }

    /// One step of the server's handshake. On failure the session is finished; plain HTTP is
    /// answered in plain text first.
    private func handshake(_ ssl: OpaquePointer, _ session: inout Session) -> HandshakeStep {
        session.attempted = true
        OpenSSLErrorQueue.clear()
        let outcome = SSL_do_handshake(ssl)
        if outcome == 1 {
            session.established = true
            session.needsWritable = false
            if let certificate = SSL_get0_peer_certificate(ssl), let subject = CertificateFacts.subject(of: certificate) {
                session.peerSubject = subject
                // Who connected, for an operator who asks (TCP runs no command that records an actor yet).
                log.debug("tls client certificate accepted", ["subject": subject, "peer": peerAddress])
            }
            metrics.handshakeCompleted(resumed: SSL_session_reused(ssl) == 1)
            return .done
        }
        let error = SSL_get_error(ssl, outcome)
        switch error {
        case SSL_ERROR_WANT_READ:
            session.needsWritable = false
            return .wouldBlock
        case SSL_ERROR_WANT_WRITE:
            session.needsWritable = true
            return .wouldBlock
        default:
            session.finished = true
            let codes = OpenSSLErrorQueue.drain()
            let detail = codes.isEmpty ? (error == SSL_ERROR_SYSCALL && errno != 0 ? String(cString: strerror(errno)) : "connection closed")
                                       : codes.map(OpenSSLErrorQueue.text(of:)).joined(separator: "; ")
            let reason = session.timedOut ? .timeout : TLSTransport.classify(codes)
            if reason == .plainHTTP { answerPlainHTTP() }
            return .failed(reason, detail)
        }
    }

    /// Why a handshake failed, from OpenSSL's queued errors (libssl's reason codes).
    static func classify(_ codes: [UInt]) -> TLSMetrics.FailureReason {
        func any(_ reasons: Int32...) -> Bool { codes.contains { code in reasons.contains { OpenSSLErrorQueue.isSSL(code, reason: $0) } } }
        if codes.isEmpty || any(SSL_R_UNEXPECTED_EOF_WHILE_READING) { return .closed }
        if any(SSL_R_HTTP_REQUEST, SSL_R_HTTPS_PROXY_REQUEST) { return .plainHTTP }
        if any(SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_VERSION_TOO_LOW, SSL_R_NO_PROTOCOLS_AVAILABLE) { return .protocolVersion }
        if any(SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) { return .noClientCertificate }
        if any(SSL_R_CERTIFICATE_VERIFY_FAILED) { return .badClientCertificate }
        if any(SSL_R_NO_SHARED_CIPHER, SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM, SSL_R_NO_SHARED_GROUPS) { return .noSharedCipher }
        if any(SSL_R_NO_APPLICATION_PROTOCOL) { return .noApplicationProtocol }
        if any(SSL_R_WRONG_VERSION_NUMBER, SSL_R_UNKNOWN_PROTOCOL, SSL_R_PACKET_LENGTH_TOO_LONG, SSL_R_RECORD_LENGTH_MISMATCH,
               SSL_R_BAD_PACKET_LENGTH, SSL_R_WRONG_SSL_VERSION, SSL_R_UNEXPECTED_MESSAGE, SSL_R_UNEXPECTED_RECORD,
               SSL_R_LENGTH_MISMATCH, SSL_R_BAD_LENGTH, SSL_R_LENGTH_TOO_SHORT, SSL_R_ENCRYPTED_LENGTH_TOO_LONG) { return .notTLS }
        // Alerts the peer sent arrive as reasons from 1000 up (SSL_AD_REASON_OFFSET).
        if codes.contains(where: { ERR_GET_LIB($0) == ERR_LIB_SSL && ERR_GET_REASON($0) >= SSL_AD_REASON_OFFSET }) { return .peerAlert }
        return .other
    }

    /// Plain HTTP on the TLS port: a clear answer instead of silence. What the client sent is
    /// read first (so the close does not reset the connection before the answer is read), the
    /// answer written once, without waiting (a client that does not read loses it), then the
    /// write side is shut.
    private func answerPlainHTTP() {
        var scratch = [UInt8](repeating: 0, count: 16 << 10)
        for _ in 0..<4 where Glibc.recv(descriptor, &scratch, scratch.count, Int32(MSG_DONTWAIT)) > 0 {}
        let body = "this port speaks HTTPS (TLS); send the request to https:// instead of http://\n"
        let answer = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        _ = answer.utf8CString.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        shutdown(descriptor, Int32(SHUT_WR))
    }

    /// Application data: every record OpenSSL holds, up to `buffer`'s size (a full buffer makes
    /// the state machine read again). It returns only once OpenSSL holds no whole record, so
    /// nothing waits inside OpenSSL where epoll cannot see it.
    private func readRecords(_ ssl: OpaquePointer, _ session: inout Session, into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        var total = 0
        while total < buffer.count {
            OpenSSLErrorQueue.clear()
            let n = SSL_read(ssl, buffer.baseAddress! + total, Int32(min(buffer.count - total, Int(Int32.max))))
            if n > 0 {
                total += Int(n)
                // Nothing more buffered: stop without a `read(2)` that would only say EAGAIN;
                // what the kernel still holds, epoll reports.
                if SSL_has_pending(ssl) != 1 { return .transferred(total) }
                continue
            }
            switch SSL_get_error(ssl, n) {
            case SSL_ERROR_WANT_READ:
                // At most the start of a record is buffered; its rest comes from the kernel.
                session.needsWritable = false
                return total > 0 ? .transferred(total) : .wouldBlock
            case SSL_ERROR_WANT_WRITE:
                session.needsWritable = true
                return total > 0 ? .transferred(total) : .wouldBlock
            default:
                // The peer's close_notify, a reset or a fatal error: end of input.
                session.finished = true
                OpenSSLErrorQueue.clear()
                return total > 0 ? .transferred(total) : .closed
            }
        }
        return .transferred(total)
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> TransportResult {
        session.withLock { session in
            guard let ssl = session.ssl, session.established, !session.finished else { return .closed }
            OpenSSLErrorQueue.clear()
            let n = SSL_write(ssl, bytes.baseAddress, Int32(min(bytes.count, Int(Int32.max))))
            if n > 0 { return .transferred(Int(n)) }
            switch SSL_get_error(ssl, n) {
            case SSL_ERROR_WANT_WRITE:
                session.needsWritable = true
                return .wouldBlock
            case SSL_ERROR_WANT_READ:
                session.needsWritable = false
                return .wouldBlock
            default:
                session.finished = true
                OpenSSLErrorQueue.clear()
                return .closed
            }
        }
    }

    /// Waits for what the last call needed: usually writability; a TLS record to read when the
    /// session must read before it can write.
    func waitUntilWritable(timeout: Double) -> Bool {
        let events = needsWritable ? POLLOUT : POLLIN
        var request = pollfd(fd: descriptor, events: Int16(events), revents: 0)
        let ready = poll(&request, 1, Int32(timeout * 1000))
        return ready > 0 || (ready < 0 && errno == EINTR)
    }

    func hasPendingInput() -> Bool {
        if session.withLock({ session in session.ssl.map { SSL_has_pending($0) == 1 } ?? false }) { return true }
        var byte: UInt8 = 0
        return recv(descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
    }

    func shutdownReading() {
        session.withLock { $0.timedOut = true }
        shutdown(descriptor, Int32(SHUT_RD))
    }

    /// Sends close_notify when the session is healthy (one try: a client that does not read
    /// will not get it), frees the session and closes the socket. A handshake that started but
    /// neither completed nor failed yet (the stop closed it) counts now.
    func close() {
        let abandoned: TLSMetrics.FailureReason? = session.withLock { session in
            guard let ssl = session.ssl else { return nil }
            defer {
                SSL_free(ssl)
                session.ssl = nil
            }
            if session.established && !session.finished {
                OpenSSLErrorQueue.clear()
                SSL_shutdown(ssl)
                OpenSSLErrorQueue.clear()
                return nil
            }
            return session.established || session.finished || !session.attempted ? nil : (session.timedOut ? .timeout : .closed)
        }
        _ = Glibc.close(descriptor)
        if let abandoned { metrics.handshakeFailed(abandoned, peer: peerAddress, detail: "no complete handshake", log: log) }
    }
}
