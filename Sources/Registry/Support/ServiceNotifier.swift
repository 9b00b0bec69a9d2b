import CLinux
import Foundation
import Glibc
import Wire

/// systemd's service readiness protocol (sd_notify(3)), written by hand so that registryd needs
/// no libsystemd: each state change is one datagram, `KEY=VALUE` lines, sent to the Unix socket
/// that systemd names in `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
/// Without `NOTIFY_SOCKET` (not started by systemd with `Type=notify`) every call does nothing.
///
/// registryd sends `READY=1` once its models are loaded and it serves, `RELOADING=1` and then
/// `READY=1` around a configuration reload, and `STOPPING=1` when SIGTERM arrives.
public struct ServiceNotifier: Sendable {
    /// The socket address from `NOTIFY_SOCKET`, if any.
    public let socketPath: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let value = environment["NOTIFY_SOCKET"] ?? ""
        socketPath = value.isEmpty ? nil : value
    }

    public var isEnabled: Bool { socketPath != nil }

    /// The monotonic clock in microseconds, which `RELOADING=1` carries as `MONOTONIC_USEC`
    /// (systemd 253 and later require it with `Type=notify-reload`; older ones ignore it).
    public static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// Sends `state` (for example `"READY=1\nSTATUS=serving 2 models"`). Returns whether the
    /// datagram was sent; a failure is not fatal to the daemon, which goes on serving.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let path = socketPath else { return false }
        // `@name` is a name in the abstract namespace; anything else must be an absolute path.
        let address: UnixSocketAddress?
        if path.hasPrefix("@") {
            address = UnixSocketAddress(abstractName: String(path.dropFirst()))
        } else {
            address = path.hasPrefix("/") ? UnixSocketAddress(path: path) : nil
        }
        guard let address else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | registryd_sock_cloexec(), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let message = Array(state.utf8)
        let sent = message.withUnsafeBytes { bytes in
            address.withSockaddr { sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, $1) }
        }
        return sent == message.count
    }
}
