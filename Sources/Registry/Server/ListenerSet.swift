import CLinux
import Foundation
import Glibc
import Synchronization

/// The sockets the server listens on: the control socket (a Unix socket with its file's mode and
/// group) and the optional TCP serving listener. It accepts, and labels each connection with who
/// is on the other end (``HTTPServer/Peer``): the listener it came through, which is what keeps
/// `/v1` control on the control socket (``Endpoints`` refuses it on `.serving`), and on the
/// control socket the peer's process and user from `SO_PEERCRED`, which the kernel fills in and
/// the client cannot forge. When descriptors run out, accepting backs off briefly instead of
/// spinning on a listener that stays readable.
///
/// It also keeps the control socket reachable: a socket name deleted while the daemon runs (a
/// cleanup script, an `rm -rf /run/...`) is bound again, and a foreign file in its place is left
/// alone and reported.
///
/// Thread-safety: thread-safe; the listener table lives in a `Mutex`. A listener's readiness goes
/// to one worker at a time (one-shot), which accepts until the backlog is empty and re-arms it.
final class ListenerSet: Sendable {
    private struct Listener: Sendable {
        let fd: Int32
        let kind: HTTPServer.ListenerKind
        let unixPath: String?
        /// For a Unix socket: how to make it again, the inode it was bound to (never changed:
        /// only that file is ever removed), and a foreign file found in its place and reported.
        var mode: UInt32 = 0
        var group: String?
        var inode: UInt64?
        var reportedForeign: UInt64?
    }

    /// Receives each accepted socket and its peer; it owns the socket from then on.
    typealias Admit = (Int32, HTTPServer.Peer) -> Void

    private let poller: Poller
    private let log: Log
    private struct Table {
        var listeners: [Int32: Listener] = [:]
        /// Set by ``closeAll(admit:)``: no listener is added or armed after it.
        var closed = false
    }
    private let table = Mutex(Table())

    init(poller: Poller, log: Log) {
        self.poller = poller
        self.log = log
    }

    /// Listens on the control socket at `path`.
    func listenUnix(path: String, mode: UInt32, group: String?) throws(RegistryError) {
        let fd = try Socket.listenUnix(path: path, mode: mode, group: group)
        add(Listener(fd: fd, kind: .control, unixPath: path, mode: mode, group: group, inode: Socket.inode(path)))
    }

    /// Listens on `address` (`host:port`) for serving traffic; returns the port bound.
    func listenTCP(_ address: String) throws(RegistryError) -> Int {
        let fd = try Socket.listenTCP(address)
        add(Listener(fd: fd, kind: .serving, unixPath: nil))
        return Socket.localPort(fd)
    }

    private func add(_ listener: Listener) {
        table.withLock {
            $0.listeners[listener.fd] = listener
            poller.armListener(listener.fd)
        }
    }

    /// Accepts every connection waiting on the listener the poller reported at `descriptor`,
    /// then re-arms it.
    func acceptAll(on descriptor: Int32, admit: Admit) {
        guard let listener = table.withLock({ $0.listeners[descriptor] }) else { return }
        acceptAll(listener, draining: false, admit: admit)
    }

    /// `draining` (at stop) is the stop's own last pass, after which the listener is not armed
    /// again.
    private func acceptAll(_ listener: Listener, draining: Bool, admit: Admit) {
        // Re-armed only while it is still a listener (a deleted socket's listener is replaced).
        defer {
            if !draining {
                table.withLock { if !$0.closed && $0.listeners[listener.fd] != nil { poller.armListener(listener.fd) } }
            }
        }
        while true {
            let fd = registryd_accept(listener.fd)
            if fd < 0 {
                switch errno {
                case EINTR, ECONNABORTED: continue
                case EAGAIN: return
                case EMFILE, ENFILE:
                    // The listener stays readable while descriptors are out: without a pause
                    // every worker would spin on it.
                    log.warning("out of file descriptors; accepting paused briefly", ["listener": listener.kind.rawValue])
                    usleep(20_000)
                    return
                default:
                    return
                }
            }
            admit(fd, peer(of: fd, on: listener))
        }
    }

    private func peer(of fd: Int32, on listener: Listener) -> HTTPServer.Peer {
        var peer = HTTPServer.Peer(listener: listener.kind, address: "unix")
        if listener.kind == .control, listener.unixPath != nil, let credentials = Socket.peerCredentials(fd) {
            peer.pid = credentials.pid
            peer.uid = credentials.uid
            peer.gid = credentials.gid
        } else {
            Socket.setNoDelay(fd)
            peer.address = Socket.peerAddress(fd)
        }
        return peer
    }

    /// The stop's first two steps. No new clients: each Unix socket's name is removed first, so
    /// that a `connect` fails at once (ENOENT) instead of waiting in a backlog nobody will read.
    /// Then connections the kernel completed but not yet handed over are accepted (`admit`) and
    /// served, not reset; then the listeners close.
    func closeAll(admit: Admit) {
        let closing: [Listener] = table.withLock { table in
            table.closed = true
            let open = Array(table.listeners.values)
            table.listeners.removeAll()
            return open
        }
        for listener in closing {
            // Only our own socket's name: a file someone put in its place stays.
            if let path = listener.unixPath, let inode = listener.inode, Socket.inode(path) == inode { unlink(path) }
        }
        for listener in closing {
            poller.remove(listener.fd)
            acceptAll(listener, draining: true, admit: admit)
            close(listener.fd)
        }
    }

    /// A control socket whose name was deleted leaves the daemon unreachable although it runs.
    /// Called every few seconds: a missing name is bound again (same mode and group) and the old
    /// socket closed; a name now taken by another file is left alone and reported once.
    func restoreDeletedSockets() {
        let unix = table.withLock { $0.listeners.values.filter { $0.unixPath != nil } }
        for listener in unix {
            guard let path = listener.unixPath, Socket.inode(path) != listener.inode else { continue }
            if let other = Socket.inode(path) {
                // Never removed, whatever it is (another daemon's socket too).
                if listener.reportedForeign != other {
                    log.error("control socket path taken by another file; not replacing it", ["path": path])
                    table.withLock { $0.listeners[listener.fd]?.reportedForeign = other }
                }
                continue
            }
            let fd: Int32
            do {
                fd = try Socket.listenUnix(path: path, mode: listener.mode, group: listener.group)
            } catch {
                log.error("control socket was deleted and cannot be bound again", ["path": path, "error": error.message])
                continue
            }
            let replacement = Listener(fd: fd, kind: listener.kind, unixPath: path, mode: listener.mode, group: listener.group,
                                       inode: Socket.inode(path))
            // One step, so that a stop sees either the old listener or the new one, armed.
            let replaced: Bool = table.withLock {
                guard !$0.closed, $0.listeners[listener.fd] != nil else { return false }
                $0.listeners[listener.fd] = nil
                $0.listeners[fd] = replacement
                poller.armListener(fd)
                return true
            }
            guard replaced else {
                close(fd)
                unlink(path)
                continue
            }
            poller.remove(listener.fd)
            close(listener.fd)
            log.warning("control socket was deleted; listening on it again", ["path": path])
        }
    }
}
