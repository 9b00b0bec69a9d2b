import Foundation
import Glibc
import Synchronization

/// What a watcher reports: something under the root changed (a rescan is due), with the paths
/// that arrived by rename (atomic writes: complete on arrival); or events were lost.
public enum WatchEvent: Sendable, Equatable {
    case changed(movedIn: [String])
    /// The kernel's queue overflowed: events were lost, a full rescan must heal it.
    case overflow
}

/// Tells the lifecycle when the model root changes. A seam: the daemon uses inotify, tests can
/// drive it by hand (a periodic rescan covers anything a watcher misses).
public protocol DirectoryWatcher: Sendable {
    func start(root: String, onEvent: @escaping @Sendable (WatchEvent) -> Void) throws(RegistryError)
    func stop()
}

/// inotify on the model root, every model directory and every version directory.
///
/// One thread of its own blocks in `poll` on the inotify descriptor and a wake pipe; `stop()`
/// writes the pipe and joins. Watches are added for directories as they appear.
/// Thread-safety: the descriptor table is touched only by the watcher thread; start/stop are
/// serialised by `state`.
public final class InotifyWatcher: DirectoryWatcher {
    private struct State {
        var fd: Int32 = -1
        var wakeRead: Int32 = -1
        var wakeWrite: Int32 = -1
        var finished: DispatchSemaphore?
    }
    private let state = Mutex(State())

    public init() {}

    deinit {
        stop()
    }

    public func start(root: String, onEvent: @escaping @Sendable (WatchEvent) -> Void) throws(RegistryError) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw RegistryError(.system, "inotify_init1 failed: \(String(cString: strerror(errno)))") }
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else {
            close(fd)
            throw RegistryError(.system, "pipe() failed: \(String(cString: strerror(errno)))")
        }
        for end in pipeFDs {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        let finished = DispatchSemaphore(value: 0)
        let loop = WatchLoop(fd: fd, wake: pipeFDs[0], root: root, onEvent: onEvent)
        guard loop.addWatch(root) else {
            close(fd); close(pipeFDs[0]); close(pipeFDs[1])
            throw RegistryError(.system, "cannot watch model root '\(root)': \(String(cString: strerror(errno)))")
        }
        loop.addTree(root, depth: 0)
        let thread = Thread {
            loop.run()
            finished.signal()
        }
        thread.name = "registryd-inotify"
        state.withLock {
            $0 = State(fd: fd, wakeRead: pipeFDs[0], wakeWrite: pipeFDs[1], finished: finished)
        }
        thread.start()
    }

    public func stop() {
        let current = state.withLock { s -> State in
            let copy = s
            s = State()
            return copy
        }
        guard current.fd >= 0 else { return }
        var byte: UInt8 = 1
        _ = write(current.wakeWrite, &byte, 1)
        current.finished?.wait()
        close(current.fd)
        close(current.wakeRead)
        close(current.wakeWrite)
    }
}

/// The watcher thread's own state (never shared).
private final class WatchLoop: @unchecked Sendable {
    // @unchecked: used only by the watcher thread after `start` hands it over.
    let fd: Int32
    let wake: Int32
    let root: String
    let onEvent: @Sendable (WatchEvent) -> Void
    var paths: [Int32: String] = [:]

    init(fd: Int32, wake: Int32, root: String, onEvent: @escaping @Sendable (WatchEvent) -> Void) {
        self.fd = fd
        self.wake = wake
        self.root = root
        self.onEvent = onEvent
    }

    private static let mask: UInt32 = UInt32(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

    @discardableResult
    func addWatch(_ path: String) -> Bool {
        let wd = inotify_add_watch(fd, path, WatchLoop.mask | UInt32(IN_ONLYDIR))
        guard wd >= 0 else { return false }
        paths[wd] = path
        return true
    }

    /// Watches the directories below `path`: models (depth 1) and versions (depth 2).
    func addTree(_ path: String, depth: Int) {
        guard depth < 2 else { return }
        for entry in ModelDirectory.entries(of: path) {
            let child = "\(path)/\(entry)"
            if ModelDirectory.isDirectory(child), addWatch(child) { addTree(child, depth: depth + 1) }
        }
    }

    func depth(of path: String) -> Int {
        path == root ? 0 : path.dropFirst(root.count).split(separator: "/").count
    }

    func run() {
        let bufferSize = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer { buffer.deallocate() }
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        while true {
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 { return }
            var movedIn: [String] = []
            var changed = false
            var overflow = false
            while true {
                let n = read(fd, buffer, bufferSize)
                if n <= 0 { break }
                var offset = 0
                while offset < n {
                    let event = buffer.advanced(by: offset).assumingMemoryBound(to: inotify_event.self)
                    let nameLength = Int(event.pointee.len)
                    var name = ""
                    if nameLength > 0 {
                        let namePointer = buffer.advanced(by: offset + MemoryLayout<inotify_event>.size).assumingMemoryBound(to: CChar.self)
                        name = String(cString: namePointer)
                    }
                    offset += MemoryLayout<inotify_event>.size + nameLength
                    let mask = event.pointee.mask
                    if mask & UInt32(IN_Q_OVERFLOW) != 0 { overflow = true; continue }
                    if mask & UInt32(IN_IGNORED) != 0 { paths[event.pointee.wd] = nil; continue }
                    guard let directory = paths[event.pointee.wd] else { continue }
                    changed = true
                    let path = name.isEmpty ? directory : "\(directory)/\(name)"
                    if mask & UInt32(IN_ISDIR) != 0, mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 {
                        let d = depth(of: path)
                        if d <= 2, addWatch(path) { addTree(path, depth: d) }
                    }
                    if mask & UInt32(IN_MOVED_TO) != 0 { movedIn.append(path) }
                }
            }
            if overflow {
                // Watches may be missing for directories created during the overflow.
                addTree(root, depth: 0)
                onEvent(.overflow)
            } else if changed {
                onEvent(.changed(movedIn: movedIn))
            }
        }
    }
}
