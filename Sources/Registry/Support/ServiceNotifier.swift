import CLinux
import Foundation
import Glibc

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
        var name = Array(path.utf8)
        let abstract = name.first == UInt8(ascii: "@")
        if abstract { name[0] = 0 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !name.isEmpty, name.count < capacity, abstract || name.first == UInt8(ascii: "/") else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: name)
        }
        // An abstract address's length counts exactly its bytes; a path's, its terminating zero.
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + name.count + (abstract ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | registryd_sock_cloexec(), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let message = Array(state.utf8)
        let sent = message.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
        return sent == message.count
    }
}
