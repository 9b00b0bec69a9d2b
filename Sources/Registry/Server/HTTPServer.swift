import CLinux
import Foundation
import Glibc
import Synchronization
import Wire

/// An HTTP/1.1 server on POSIX sockets: Unix-socket and TCP listeners, keep-alive, bounded
/// request parsing (``HTTPRequestParser``), timeouts and a connection cap.
///
/// Threading: a fixed pool of worker threads shares one epoll instance. Every connection is
/// registered with `EPOLLONESHOT`, so at any moment it is either waiting in epoll (no thread
/// touches it) or owned by exactly one worker, which reads, parses, calls the handler, writes
/// the response and re-arms it. The handler runs on the worker (a prediction blocks in ONNX
/// Runtime's `Run`; these are threads we own, never Swift's cooperative pool), so a request
/// costs no thread hop. A reaper thread enforces the timeouts by shutting down the read side of
/// late connections; the worker that picks up the resulting event answers 408 and closes.
///
/// Busy polling (`busyPollMicroseconds`): after answering, a worker may keep the connection and
/// poll it for the client's next request for a few microseconds before handing it back to
/// epoll. A client that sends its next request at once (a closed loop, a batch job) then finds
/// the worker awake: the worker does not sleep in `epoll_wait`, the client's write wakes no
/// thread, and the connection is not re-armed. On this project's machines (virtual CPUs, where
/// a sleep and a cross-CPU wake-up cost tens of microseconds) that wake-up was about a third of
/// the daemon's CPU per request for a small model. A worker polls only while no other worker
/// is handling anything (so at most one polls; under load the next event is already waiting,
/// and polling would take a CPU from the workers serving it), yields its CPU every few turns to
/// any thread waiting for it, polls for at most the budget, and after a poll that ran out the
/// connection's next 15 chances are skipped. At most 16 requests found by polling are served
/// in a row before the connection goes back to epoll. (Polling between the pieces of a large
/// body was tried too: ResNet-50's 602 KB binary requests showed no difference beyond noise.)
///
/// Bookkeeping shared between threads (`connections`, each connection's timing fields,
/// `inFlight`) is guarded by `lock`, which is why the class is `@unchecked Sendable`. The
/// counters read without it (`active`, `stoppingFlag`, the busy-poll tallies) are atomics; a
/// connection's parser and `pollSkips` belong to the one worker that owns the connection
/// (`EPOLLONESHOT`), and the hand-back under `lock` orders them for the next owner.
public final class HTTPServer: @unchecked Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Worker threads (each runs handlers, so this bounds concurrent predictions).
        public var threads: Int
        /// Open connections beyond this are answered 503 and closed.
        public var maxConnections: Int
        /// From the first byte of a request to its last: slower senders are dropped with 408.
        public var requestTimeout: Double
        /// A keep-alive connection with no request for this long is closed.
        public var idleTimeout: Double
        /// A client that does not read its response for this long is dropped.
        public var writeTimeout: Double
        public var limits: HTTPRequestParser.Limits
        /// How long a worker polls an answered connection for its next request before handing it
        /// back to epoll, in microseconds; 0 turns busy polling off.
        public var busyPollMicroseconds: Int

        public init(threads: Int = 8, maxConnections: Int = 4096, requestTimeout: Double = 30, idleTimeout: Double = 300,
                    writeTimeout: Double = 30, limits: HTTPRequestParser.Limits = .init(), busyPollMicroseconds: Int = 0) {
            self.threads = threads
            self.busyPollMicroseconds = busyPollMicroseconds
            self.maxConnections = maxConnections
            self.requestTimeout = requestTimeout
            self.idleTimeout = idleTimeout
            self.writeTimeout = writeTimeout
            self.limits = limits
        }
    }

    /// Which listener a connection came through: the control socket, or the TCP serving port.
    public enum ListenerKind: String, Sendable {
        case control, serving
    }

    /// Who is on the other end of a connection.
    public struct Peer: Sendable, CustomStringConvertible {
        public var listener: ListenerKind
        /// From `SO_PEERCRED`, on the Unix socket.
        public var pid: Int32?
        public var uid: UInt32?
        public var gid: UInt32?
        /// `ip:port` for TCP, `unix` otherwise.
        public var address: String

        /// The actor recorded in events: `uid=1000(alice) gid=1000 pid=4242`.
        public var description: String {
            guard let uid, let gid, let pid else { return "tcp \(address)" }
            return "uid=\(uid)\(HTTPServer.userName(uid).map { "(\($0))" } ?? "") gid=\(gid) pid=\(pid)"
        }
    }

    public typealias Handler = @Sendable (HTTPRequest, Peer) -> HTTPResponse

    private final class Connection {
        let fd: Int32
        let peer: Peer
        var parser: HTTPRequestParser
        // Guarded by the server's lock.
        var lastActivity: Double
        var requestStarted: Double?
        var armed = false
        var timedOut = false
        /// When it was accepted, and how many responses it has had.
        let accepted: Double
        var answered = 0
        /// Busy-poll chances still to skip after a poll that ran out (owned by the worker that
        /// owns the connection).
        var pollSkips = 0

        init(fd: Int32, peer: Peer, limits: HTTPRequestParser.Limits, now: Double) {
            self.fd = fd
            self.peer = peer
            self.parser = HTTPRequestParser(limits: limits)
            self.lastActivity = now
            self.accepted = now
        }
    }

    private struct Listener {
        let fd: Int32
        let kind: ListenerKind
        let unixPath: String?
        /// For a Unix socket: how to make it again, the inode it was bound to (never changed:
        /// only that file is ever removed), and a foreign file found in its place and reported.
        var mode: UInt32 = 0
        var group: String?
        var inode: UInt64?
        var reportedForeign: UInt64?
    }

    // epoll event bits (fixed by the Linux ABI).
    private static let eventIn: UInt32 = 0x001
    private static let eventRDHUP: UInt32 = 0x2000
    private static let eventOneShot: UInt32 = 1 << 30

    public let configuration: Configuration
    private let handler: Handler
    private let log: Log
    private let epollFD: Int32
    private let wakeFD: Int32
    private let lock = NSLock()
    private var listeners: [Int32: Listener] = [:]
    private var connections: [Int32: Connection] = [:]
    private var inFlight = 0
    private var stopping = false
    /// `stopping`, readable without the lock on the serving path.
    private let stoppingFlag = Atomic<Bool>(false)
    private var threads: [Thread] = []
    private let finished = DispatchGroup()
    /// Workers handling an event (not waiting in `epoll_wait`).
    private let active = Atomic<Int>(0)
    /// Busy polls that found the client's next request, and those that ran out (for tests and
    /// metrics).
    private let pollHits = Atomic<Int>(0)
    private let pollMissCount = Atomic<Int>(0)
    /// The TCP port actually bound (tests listen on port 0).
    public private(set) var tcpPort: Int?

    public init(configuration: Configuration, log: Log, handler: @escaping Handler) throws(RegistryError) {
        self.configuration = configuration
        self.handler = handler
        self.log = log
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw RegistryError(.system, "epoll_create1: \(Socket.errorText())") }
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        guard wakeFD >= 0 else {
            close(epollFD)
            throw RegistryError(.system, "eventfd: \(Socket.errorText())")
        }
        // Level-triggered and not one-shot: once written, it wakes every worker to exit.
        var event = epoll_event()
        event.events = HTTPServer.eventIn
        event.data.u64 = UInt64(UInt32(bitPattern: wakeFD))
        epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event)
    }

    deinit {
        precondition(threads.isEmpty || stopping, "HTTPServer released while running: call stop()")
        close(wakeFD)
        close(epollFD)
    }

    /// Listens on the control socket at `path`.
    public func listenUnix(path: String, mode: UInt32, group: String?) throws(RegistryError) {
        let fd = try Socket.listenUnix(path: path, mode: mode, group: group)
        add(Listener(fd: fd, kind: .control, unixPath: path, mode: mode, group: group, inode: HTTPServer.inode(path)))
    }

    /// Listens on `address` (`host:port`) for serving traffic.
    public func listenTCP(_ address: String) throws(RegistryError) {
        let fd = try Socket.listenTCP(address)
        tcpPort = Socket.localPort(fd)
        add(Listener(fd: fd, kind: .serving, unixPath: nil))
    }

    private func add(_ listener: Listener) {
        lock.withLock { listeners[listener.fd] = listener }
        arm(listener.fd)
    }

    /// Starts the worker and reaper threads.
    public func start() {
        for index in 0..<max(1, configuration.threads) {
            finished.enter()
            let thread = Thread { [self] in
                workerLoop()
                finished.leave()
            }
            thread.name = "registryd-http-\(index)"
            thread.stackSize = 1 << 20
            threads.append(thread)
            thread.start()
        }
        finished.enter()
        let reaper = Thread { [self] in
            reaperLoop()
            finished.leave()
        }
        reaper.name = "registryd-http-reaper"
        threads.append(reaper)
        reaper.start()
    }

    /// Stops gracefully, within `deadline` seconds:
    /// 1. no new clients: the Unix socket's name is removed first, so a `connect` fails at once
    ///    (ENOENT) instead of waiting in a backlog nobody will read;
    /// 2. connections the kernel completed but not yet handed over are accepted and served, not
    ///    reset; then the listeners close;
    /// 3. requests in flight, and requests already received whole or in part, are answered
    ///    (with `Connection: close`);
    /// 4. idle keep-alive connections are closed, the threads stop.
    /// A request that arrives on an idle keep-alive connection after step 3 was never read: its
    /// client sees the connection close without an answer, as with any server that closes an
    /// idle connection, and retries on a new connection, which is refused.
    public func stop(deadline: Double = 10) {
        let closing: [Listener] = lock.withLock {
            stopping = true
            stoppingFlag.store(true, ordering: .releasing)
            defer { listeners.removeAll() }
            return Array(listeners.values)
        }
        for listener in closing {
            // Only our own socket's name: a file someone put in its place stays.
            if let path = listener.unixPath, let inode = listener.inode, HTTPServer.inode(path) == inode { unlink(path) }
        }
        for listener in closing {
            epoll_ctl(epollFD, EPOLL_CTL_DEL, listener.fd, nil)
            acceptAll(listener, draining: true)
            close(listener.fd)
        }
        let limit = Date().addingTimeInterval(deadline)
        while lock.withLock({ busy() }) && Date() < limit {
            usleep(2_000)
        }
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
        _ = finished.wait(timeout: .now() + max(1, limit.timeIntervalSinceNow))
        lock.withLock {
            for connection in connections.values { close(connection.fd) }
            connections.removeAll()
        }
    }

    /// Whether any request is being handled, or has arrived (whole or in part) and waits for a
    /// worker, or may be about to: a connection accepted less than a second ago that has not
    /// sent its first request yet (its client connected and is writing it). Called under
    /// `lock`. A connection a worker owns (`armed` false) counts as busy; one waiting in epoll is
    /// quiescent, so its parser may be read here.
    private func busy() -> Bool {
        if inFlight > 0 { return true }
        let now = Date().timeIntervalSince1970
        var byte: UInt8 = 0
        return connections.values.contains { connection in
            !connection.armed || connection.parser.isMidRequest
                || (connection.answered == 0 && now - connection.accepted < 1)
                || recv(connection.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
        }
    }

    /// What the server is doing, for metrics and tests.
    public struct Counts: Sendable {
        /// Open connections, and requests being handled.
        public var connections = 0, inFlight = 0
        /// Busy polls that found the client's next request, and those that ran out.
        public var busyPollHits = 0, busyPollMisses = 0
    }

    public var counts: Counts {
        var counts = lock.withLock { Counts(connections: connections.count, inFlight: inFlight) }
        counts.busyPollHits = pollHits.load(ordering: .relaxed)
        counts.busyPollMisses = pollMissCount.load(ordering: .relaxed)
        return counts
    }

    // MARK: Workers

    private func arm(_ fd: Int32) {
        var event = epoll_event()
        event.events = HTTPServer.eventIn | HTTPServer.eventRDHUP | HTTPServer.eventOneShot
        event.data.u64 = UInt64(UInt32(bitPattern: fd))
        if epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event) != 0 {
            epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event)
        }
    }

    private func workerLoop() {
        let capacity = 64 << 10
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var event = epoll_event()
        while true {
            let count = epoll_wait(epollFD, &event, 1, -1)
            if count < 0 {
                if errno == EINTR { continue }
                log.error("epoll_wait failed; worker stops", ["error": Socket.errorText()])
                return
            }
            if count == 0 { continue }
            let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: event.data.u64))
            if fd == wakeFD { return }
            active.add(1, ordering: .relaxed)
            defer { active.subtract(1, ordering: .relaxed) }
            enum Owner { case listener(Listener), connection(Connection), none }
            let owner: Owner = lock.withLock {
                if let listener = listeners[fd] { return .listener(listener) }
                if let connection = connections[fd] {
                    connection.armed = false
                    return .connection(connection)
                }
                return .none
            }
            switch owner {
            case .listener(let listener): acceptAll(listener)
            case .connection(let connection): serve(connection, buffer: buffer)
            case .none: break
            }
        }
    }

    /// Accepts every connection waiting on `listener`; `draining` (at stop) is the stop's own
    /// last pass, after which the listener is not armed again.
    private func acceptAll(_ listener: Listener, draining: Bool = false) {
        // Re-armed only while it is still a listener (a deleted socket's listener is replaced).
        defer { if !draining && lock.withLock({ !stopping && listeners[listener.fd] != nil }) { arm(listener.fd) } }
        while true {
            let fd = registryd_accept(listener.fd)
            if fd < 0 {
                switch errno {
                case EINTR, ECONNABORTED: continue
                case EAGAIN: return
                case EMFILE, ENFILE:
                    log.warning("out of file descriptors; accepting paused briefly", ["listener": listener.kind.rawValue])
                    usleep(20_000)
                    return
                default:
                    return
                }
            }
            var peer = Peer(listener: listener.kind, address: "unix")
            if listener.kind == .control, listener.unixPath != nil, let credentials = Socket.peerCredentials(fd) {
                peer.pid = credentials.pid
                peer.uid = credentials.uid
                peer.gid = credentials.gid
            } else {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                peer.address = Socket.peerAddress(fd)
            }
            let now = Date().timeIntervalSince1970
            // A connection taken from the backlog is served even if the stop began meanwhile:
            // the stop's own drain (`draining`) admits the same backlog, and a worker that was
            // already in this loop when the stop began must not answer it 503 (the client
            // connected before the socket went away). Past the listener's close nothing more
            // is accepted.
            let admitted: Bool = lock.withLock {
                guard connections.count < configuration.maxConnections else { return false }
                let connection = Connection(fd: fd, peer: peer, limits: configuration.limits, now: now)
                connection.armed = true
                connections[fd] = connection
                return true
            }
            if !admitted {
                let refusal = HTTPResponse.error(503, "too many open connections (limit \(configuration.maxConnections)); retry later")
                _ = refusal.serialized(keepAlive: false).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                close(fd)
                continue
            }
            arm(fd)
        }
    }

    private func serve(_ connection: Connection, buffer: UnsafeMutableRawBufferPointer) {
        var eof = readAvailable(connection, buffer: buffer)
        // Requests found by busy polling in this call: after 16, the connection goes back to
        // epoll, so that with a single worker one eager client cannot keep it from the others.
        var polled = 0
        while true {
            switch connection.parser.next() {
            case .needMore:
                if !eof && !connection.parser.isMidRequest && connection.answered > 0 && polled < 16,
                   let found = busyPoll(connection, buffer: buffer) {
                    eof = found
                    polled += 1
                    continue
                }
                // One lock for the timeout check and the hand-back (each acquisition is contended
                // by every worker under load).
                let now = Date().timeIntervalSince1970
                let timedOut: Bool = lock.withLock {
                    if connection.timedOut { return true }
                    if eof { return false }
                    connection.lastActivity = now
                    if connection.parser.isMidRequest {
                        if connection.requestStarted == nil { connection.requestStarted = now }
                    } else {
                        connection.requestStarted = nil
                    }
                    connection.armed = true
                    return false
                }
                if timedOut {
                    if connection.parser.isMidRequest {
                        _ = write(connection.fd, HTTPResponse.error(408, "request not received within \(String(format: "%g", configuration.requestTimeout)) s").serialized(keepAlive: false))
                    }
                    closeConnection(connection)
                    return
                }
                if eof {
                    closeConnection(connection)
                    return
                }
                arm(connection.fd)
                return
            case .continueExpected:
                guard write(connection.fd, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) else {
                    closeConnection(connection)
                    return
                }
            case .request(let request):
                lock.withLock { inFlight += 1 }
                let response = handler(request, connection.peer)
                let keepAlive = request.keepAlive && !eof && !stoppingFlag.load(ordering: .acquiring)
                let written = write(connection.fd, response.serialized(keepAlive: keepAlive, headOnly: request.method == "HEAD"))
                response.afterSend?()
                lock.withLock {
                    inFlight -= 1
                    connection.requestStarted = nil
                    connection.answered += 1
                }
                if !written || !keepAlive {
                    closeConnection(connection)
                    return
                }
            case .failure(let failure):
                _ = write(connection.fd, HTTPResponse.error(failure.status, failure.message).serialized(keepAlive: false))
                closeConnection(connection)
                return
            }
        }
    }

    /// Reads what the socket holds into the connection's parser; true at end of file (or a
    /// broken connection).
    private func readAvailable(_ connection: Connection, buffer: UnsafeMutableRawBufferPointer) -> Bool {
        while true {
            let n = Socket.retrying { read(connection.fd, buffer.baseAddress, buffer.count) }
            if n > 0 {
                connection.parser.append(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                if n < buffer.count { return false }
                continue
            }
            return !(n < 0 && errno == EAGAIN)
        }
    }

    /// Polls an answered connection for its next request for up to the busy-poll budget (see the
    /// type's documentation). Returns nil when it did not poll or nothing came (the caller hands
    /// the connection back to epoll), else whether the connection reached end of file, with what
    /// arrived in the parser.
    private func busyPoll(_ connection: Connection, buffer: UnsafeMutableRawBufferPointer) -> Bool? {
        let budget = UInt64(configuration.busyPollMicroseconds) * 1000
        guard budget > 0 else { return nil }
        // After a poll that ran out, the next 15 chances are skipped: a client that pauses
        // between requests costs at most one budget per 16 answers.
        guard connection.pollSkips == 0 else {
            connection.pollSkips -= 1
            return nil
        }
        // Only when no other worker is handling anything (so at most one worker polls).
        guard active.load(ordering: .relaxed) <= 1 else { return nil }
        let deadline = DispatchTime.now().uptimeNanoseconds + budget
        var turns = 0
        while true {
            let n = recv(connection.fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
            if n > 0 {
                connection.parser.append(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                pollHits.add(1, ordering: .relaxed)
                return n == buffer.count ? readAvailable(connection, buffer: buffer) : false
            }
            if n == 0 || (errno != EAGAIN && errno != EINTR) { return true }
            // Another worker took an event: there is work, and this CPU may be needed for it.
            // Not the client's doing, so not a miss.
            if active.load(ordering: .relaxed) > 1 { return nil }
            if DispatchTime.now().uptimeNanoseconds >= deadline { break }
            // Every 8th turn (a few microseconds), any thread waiting for this CPU runs first:
            // the client itself when it shares the machine, or another process. With nothing
            // waiting this returns at once. Yielding at every turn cost about 9 us of p50 at
            // concurrency 1 (interleaved, 8 repeats: 58.1 against 49.5 us).
            turns += 1
            if turns % 8 == 0 { sched_yield() }
        }
        connection.pollSkips = 15
        pollMissCount.add(1, ordering: .relaxed)
        return nil
    }

    /// Writes all of `bytes`, waiting for the peer to read for at most the write timeout.
    private func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n > 0 {
                    offset += n
                    continue
                }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EAGAIN {
                    var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    let ready = poll(&poller, 1, Int32(configuration.writeTimeout * 1000))
                    if ready > 0 || (ready < 0 && errno == EINTR) { continue }
                }
                return false
            }
            return true
        }
    }

    private func closeConnection(_ connection: Connection) {
        lock.withLock {
            connections[connection.fd] = nil
            // Closing removes it from the epoll set; no other thread owns it now.
            close(connection.fd)
        }
    }

    // MARK: Timeouts

    /// The inode at `path` (whatever the file), or nil when there is none.
    private static func inode(_ path: String) -> UInt64? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    /// A control socket whose name was deleted (a cleanup script, a `rm -rf /run/...`) leaves the
    /// daemon unreachable although it runs. Checked every 2 s: a missing name is bound again
    /// (same mode and group) and the old socket closed; a name now taken by another file is
    /// left alone and reported.
    private func restoreUnixListeners() {
        let unix = lock.withLock { listeners.values.filter { $0.unixPath != nil } }
        for listener in unix {
            guard let path = listener.unixPath, HTTPServer.inode(path) != listener.inode else { continue }
            if let other = HTTPServer.inode(path) {
                // Reported once per file; never removed, whatever it is (another daemon's socket too).
                if listener.reportedForeign != other {
                    log.error("control socket path taken by another file; not replacing it", ["path": path])
                    lock.withLock { listeners[listener.fd]?.reportedForeign = other }
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
            let replaced: Bool = lock.withLock {
                guard !stopping, listeners[listener.fd] != nil else { return false }
                listeners[listener.fd] = nil
                return true
            }
            guard replaced else {
                close(fd)
                unlink(path)
                continue
            }
            epoll_ctl(epollFD, EPOLL_CTL_DEL, listener.fd, nil)
            close(listener.fd)
            add(Listener(fd: fd, kind: listener.kind, unixPath: path, mode: listener.mode, group: listener.group, inode: HTTPServer.inode(path)))
            log.warning("control socket was deleted; listening on it again", ["path": path])
        }
    }

    private func reaperLoop() {
        var ticks = 0
        while !lock.withLock({ stopping }) {
            usleep(250_000)
            ticks += 1
            if ticks % 8 == 0 { restoreUnixListeners() }
            let now = Date().timeIntervalSince1970
            lock.withLock {
                for connection in connections.values where connection.armed && !connection.timedOut {
                    let late: Bool
                    if let started = connection.requestStarted {
                        late = now - started > configuration.requestTimeout
                    } else {
                        late = now - connection.lastActivity > configuration.idleTimeout
                    }
                    if late {
                        connection.timedOut = true
                        // Wakes the connection with end-of-file; its worker answers and closes.
                        shutdown(connection.fd, Int32(SHUT_RD))
                    }
                }
            }
        }
    }

    static func userName(_ uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var storage = [CChar](repeating: 0, count: 1024)
        guard getpwuid_r(uid, &entry, &storage, storage.count, &result) == 0, result != nil, let name = entry.pw_name else { return nil }
        return String(cString: name)
    }
}
