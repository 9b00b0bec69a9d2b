import COpenSSL

/// OpenSSL's error queue, read into reasons and text.
///
/// Thread-safety: stateless; OpenSSL keeps one error queue per thread (ERR_get_error(3): "the
/// error codes are stored in a queue which is local to the thread"), so each call sees only the
/// calling thread's errors.
enum OpenSSLErrorQueue {
    /// Empties the calling thread's queue. SSL_get_error(3): "The current thread's error queue
    /// must be empty before the TLS/SSL I/O operation is attempted, or SSL_get_error() will not
    /// work reliably"; every TLS call in the server clears it first. It is almost always empty
    /// already, and a peek costs less than `ERR_clear_error`'s pass over every slot (which was
    /// the largest of OpenSSL's own entries in the server's profile at concurrency 64).
    static func clear() {
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }

    /// The queued errors, oldest first; the queue is empty afterwards.
    static func drain() -> [UInt] {
        var codes: [UInt] = []
        while case let code = ERR_get_error(), code != 0 { codes.append(code) }
        return codes
    }

    /// The queued errors as one lowercase sentence (OpenSSL's own reason strings, such as
    /// "key values mismatch"); the queue is empty afterwards. `fallback` when nothing was queued.
    static func message(fallback: String = "unknown openssl error") -> String {
        let texts = drain().map(text(of:))
        return texts.isEmpty ? fallback : texts.joined(separator: "; ")
    }

    /// One error's reason, as OpenSSL words it; system errors carry their errno's text.
    static func text(of code: UInt) -> String {
        if let reason = ERR_reason_error_string(code) { return String(cString: reason) }
        return "openssl error \(String(code, radix: 16))"
    }

    /// Whether `code` is libssl's error with this reason (one of `SSL_R_...`).
    static func isSSL(_ code: UInt, reason: Int32) -> Bool {
        ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == reason
    }
}
