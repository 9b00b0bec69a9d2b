import Glibc

extension HTTPServer {
    /// Which listener a connection came through: the control socket, or the TCP serving port.
    ///
    /// Thread-safety: a value type; `Sendable`.
    public enum ListenerKind: String, Sendable {
        case control, serving
    }

    /// Who is on the other end of a connection (filled in by ``ListenerSet`` at accept).
    ///
    /// Thread-safety: a value type; `Sendable`.
    public struct Peer: Sendable, CustomStringConvertible {
        public var listener: ListenerKind
        /// From `SO_PEERCRED`, on the Unix socket.
        public var pid: Int32?
        public var uid: UInt32?
        public var gid: UInt32?
        /// `ip:port` for TCP, `unix` otherwise.
        public var address: String
        /// The subject of the client's certificate (RFC 2253, `CN=client-a,O=Example`), on the
        /// TCP listener with mutual TLS, once the handshake has verified it against
        /// `tls_client_ca`.
        public var certificateSubject: String?

        /// The actor recorded in events: `uid=1000(alice) gid=1000 pid=4242` on the control
        /// socket; with mutual TLS the certificate's subject, `CN=client-a,O=Example (tls
        /// 127.0.0.1:50412)`.
        public var description: String {
            if let certificateSubject { return "\(certificateSubject) (tls \(address))" }
            guard let uid, let gid, let pid else { return "tcp \(address)" }
            return "uid=\(uid)\(HTTPServer.userName(uid).map { "(\($0))" } ?? "") gid=\(gid) pid=\(pid)"
        }
    }

    /// The login name of `uid`, when the system knows it.
    static func userName(_ uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var storage = [CChar](repeating: 0, count: 1024)
        guard getpwuid_r(uid, &entry, &storage, storage.count, &result) == 0, result != nil, let name = entry.pw_name else { return nil }
        return String(cString: name)
    }
}
