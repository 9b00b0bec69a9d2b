import Glibc

/// A Unix-domain socket address (`sockaddr_un`, unix(7)) filled in from a path or an abstract
/// name: the one place that lays out `sun_path`, for the daemon's listener, registryctl, the
/// benchmark client and the systemd notifier alike. It only fills a struct; it makes no system
/// call (the caller binds, connects or sends with ``withSockaddr(_:)``).
///
/// Thread-safety: an immutable value type; safe to share and copy between threads.
public struct UnixSocketAddress: @unchecked Sendable {
    // @unchecked: `sockaddr_un` is plain bytes (a family and a character array) with no
    // pointers, so copies share nothing; Swift does not infer Sendable for imported C structs.
    private let storage: sockaddr_un
    /// The length to pass with the address: what precedes `sun_path`, plus the path and its
    /// terminating zero, or the abstract name's bytes exactly (an abstract name may contain
    /// zeros, so its length is the only thing that ends it).
    public let length: socklen_t

    /// The longest path that fits, in bytes, leaving room for its terminating zero (107 on Linux).
    public static let maxPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// The address of the socket file at `path`; nil when the path is longer than
    /// ``maxPathBytes``.
    public init?(path: String) {
        let bytes = Array(path.utf8)
        guard bytes.count <= UnixSocketAddress.maxPathBytes else { return nil }
        self.init(sunPath: bytes, terminated: true)
    }

    /// The address `name` in Linux's abstract namespace (no file; written `@name` by systemd and
    /// others): `sun_path` is a zero byte followed by the name. Nil when the name does not fit.
    public init?(abstractName name: String) {
        let bytes = [0] + Array(name.utf8)
        guard bytes.count <= UnixSocketAddress.maxPathBytes + 1 else { return nil }
        self.init(sunPath: bytes, terminated: false)
    }

    private init(sunPath bytes: [UInt8], terminated: Bool) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            // The struct starts zeroed, so a path is terminated without writing its zero.
            raw.copyBytes(from: bytes)
        }
        storage = address
        length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (terminated ? 1 : 0))
    }

    /// Calls `body` with the address as the `sockaddr` pointer and length that `bind(2)`,
    /// `connect(2)` and `sendto(2)` take. The pointer is valid only inside `body`.
    public func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Result) rethrows -> Result {
        try withUnsafePointer(to: storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }
}
