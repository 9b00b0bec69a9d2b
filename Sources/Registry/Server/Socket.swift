import CLinux
import Foundation
import Glibc
import Wire

/// Thin, typed wrappers over the socket system calls the server needs. Every call retries
/// `EINTR` and turns `-1` into a ``RegistryError`` that names the call and the object.
enum Socket {
    /// `errno` as text.
    static func errorText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// Retries `body` while it fails with EINTR.
    @inline(__always)
    static func retrying<T: BinaryInteger>(_ body: () -> T) -> T {
        while true {
            let result = body()
            if result == -1 && errno == EINTR { continue }
            return result
        }
    }

    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// Creates, binds and listens on a Unix socket at `path` with file `mode` (and `group`).
    ///
    /// A socket file left by a crashed daemon (nobody accepts on it) is replaced; a live one
    /// means another daemon serves this path, and that is an error. Anything that is not a
    /// socket is never removed.
    static func listenUnix(path: String, mode: UInt32, group: String?) throws(RegistryError) -> Int32 {
        guard let address = UnixSocketAddress(path: path) else {
            throw RegistryError(.invalidConfiguration, "control socket path '\(path)' is \(path.utf8.count) bytes; the limit is \(UnixSocketAddress.maxPathBytes)")
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw RegistryError(.invalidConfiguration, "control socket path '\(path)' exists and is not a socket; refusing to replace it")
            }
            if let probe = try? connectUnix(path: path) {
                close(probe)
                throw RegistryError(.system, "another registryd is already listening on control socket '\(path)'")
            }
            unlink(path)  // stale: left by a daemon that did not exit cleanly
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | registryd_sock_cloexec(), 0)
        guard fd >= 0 else { throw RegistryError(.system, "socket(AF_UNIX): \(errorText())") }
        // Bind with a umask that leaves no access beyond the owner, then widen to `mode`:
        // the socket is never reachable by others before its permissions are final.
        let previousMask = umask(0o177)
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        umask(previousMask)
        guard bound == 0 else {
            let text = errorText()
            close(fd)
            throw RegistryError(.system, "cannot bind control socket '\(path)': \(text)")
        }
        if let group {
            guard let entry = getgrnam(group) else {
                close(fd)
                unlink(path)
                throw RegistryError(.invalidConfiguration, "control_socket_group '\(group)' is not a group on this system")
            }
            guard chown(path, getuid(), entry.pointee.gr_gid) == 0 else {
                let text = errorText()
                close(fd)
                unlink(path)
                throw RegistryError(.system, "cannot give control socket '\(path)' to group '\(group)': \(text)")
            }
        }
        guard chmod(path, mode_t(mode)) == 0 else {
            let text = errorText()
            close(fd)
            unlink(path)
            throw RegistryError(.system, "cannot set mode \(String(mode, radix: 8)) on control socket '\(path)': \(text)")
        }
        guard listen(fd, 1024) == 0 else {
            let text = errorText()
            close(fd)
            unlink(path)
            throw RegistryError(.system, "cannot listen on control socket '\(path)': \(text)")
        }
        setNonBlocking(fd)
        return fd
    }

    /// Binds and listens on `host:port` (IPv4, `[IPv6]`, or a name resolved once).
    static func listenTCP(_ address: String) throws(RegistryError) -> Int32 {
        let (host, port) = try parseHostPort(address)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw RegistryError(.invalidConfiguration, "listen address '\(address)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype | registryd_sock_cloexec(), first.pointee.ai_protocol)
        guard fd >= 0 else { throw RegistryError(.system, "socket for '\(address)': \(errorText())") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            let text = errorText()
            close(fd)
            throw RegistryError(.system, "cannot listen on '\(address)': \(text)")
        }
        guard listen(fd, 1024) == 0 else {
            let text = errorText()
            close(fd)
            throw RegistryError(.system, "cannot listen on '\(address)': \(text)")
        }
        setNonBlocking(fd)
        return fd
    }

    /// The port a TCP listener got (useful with port 0).
    static func localPort(_ fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer -> Int in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    /// `host:port`, `[v6]:port` or `:port` (all interfaces).
    static func parseHostPort(_ address: String) throws(RegistryError) -> (String, Int) {
        var host: Substring
        let portText: Substring
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]"), address[address.index(after: close)...].hasPrefix(":") else {
                throw RegistryError(.invalidConfiguration, "listen address '\(address)': expected '[v6-address]:port'")
            }
            host = address[address.index(after: address.startIndex)..<close]
            portText = address[address.index(close, offsetBy: 2)...]
        } else {
            guard let colon = address.lastIndex(of: ":") else {
                throw RegistryError(.invalidConfiguration, "listen address '\(address)': expected 'host:port'")
            }
            host = address[..<colon]
            portText = address[address.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw RegistryError(.invalidConfiguration, "listen address '\(address)': port must be 0...65535")
        }
        if host == "*" { host = "" }
        return (String(host), port)
    }

    /// A blocking connection to a Unix socket.
    static func connectUnix(path: String) throws(RegistryError) -> Int32 {
        guard let address = UnixSocketAddress(path: path) else {
            throw RegistryError(.system, "cannot connect to '\(path)': the path is longer than \(UnixSocketAddress.maxPathBytes) bytes")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | registryd_sock_cloexec(), 0)
        guard fd >= 0 else { throw RegistryError(.system, "socket(AF_UNIX): \(errorText())") }
        let connected = retrying { address.withSockaddr { connect(fd, $0, $1) } }
        guard connected == 0 else {
            let text = errorText()
            close(fd)
            throw RegistryError(.system, "cannot connect to '\(path)': \(text)")
        }
        return fd
    }

    /// Sends each small write at once (`TCP_NODELAY`): an answer is one write, and Nagle's
    /// algorithm would hold its tail back waiting for an acknowledgement.
    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// The inode at `path` (whatever the file), or nil when there is none.
    static func inode(_ path: String) -> UInt64? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    /// `struct ucred` (declared by glibc only under _GNU_SOURCE): pid, uid, gid.
    private struct PeerCredentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// The connected peer's process and user, from the kernel (`SO_PEERCRED`): the client
    /// cannot forge them.
    static func peerCredentials(_ fd: Int32) -> (pid: Int32, uid: UInt32, gid: UInt32)? {
        var credentials = PeerCredentials()
        var length = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else { return nil }
        return (credentials.pid, credentials.uid, credentials.gid)
    }

    /// A TCP peer's address as text.
    static func peerAddress(_ fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard ok == 0 else { return "unknown" }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let status = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard status == 0 else { return "unknown" }
        func text(_ chars: [CChar]) -> String { String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return "\(text(host)):\(text(service))"
    }

    /// Raises the soft open-file limit to the hard limit: a daemon that holds thousands of
    /// keep-alive connections needs more than the default 1,024 descriptors.
    static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return Int(clamping: limit.rlim_cur)
    }
}
