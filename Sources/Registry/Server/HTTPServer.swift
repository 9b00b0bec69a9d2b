import Foundation
import Synchronization
import Wire

/// An HTTP/1.1 server on POSIX sockets: the control socket and an optional TCP listener,
/// keep-alive and pipelining, bounded request parsing, request and idle timeouts, a connection
/// cap, busy polling and a graceful stop. It wires pieces that each have one job:
///
/// - ``Poller``: epoll, every descriptor registered one-shot;
/// - ``ListenerSet``: the listeners, accepting, the peer's identity, the control socket's upkeep;
/// - ``ConnectionTable``: the open connections and the requests in flight, behind one lock;
/// - ``ConnectionStateMachine``: each connection's exchange, as a pure state machine whose
///   actions this class carries out;
/// - ``Transport``: the only code that reads or writes a connection (``PlainTransport``, or
///   ``TLSTransport`` on a TCP listener given certificate files, whose context
///   ``TLSContextHolder`` keeps and reloads);
/// - ``BusyPoller``: polling an answered connection for its next request.
///
/// Threading: a fixed pool of worker threads shares the poller. A connection is either waiting
/// in the poller (no thread touches it) or owned by exactly one worker, which reads, parses,
/// calls the handler, writes the response and re-arms it. The handler runs on the worker (a
/// prediction blocks in ONNX Runtime's `Run`; these are threads we own, never Swift's
/// cooperative pool), so a request costs no thread hop. A reaper thread ticks the parked
/// connections' state machines with the clock; a late one has its read side shut, and the worker
/// that picks up the resulting event answers 408 and closes.
///
/// Thread-safety: thread-safe. Its own state is set before ``start()`` (the listeners, the
/// threads, `tcpPort`, `tls`) or is atomic (`stopping`); the rest lives in the pieces above, each
/// thread-safe in its own way (hence `@unchecked Sendable`).
public final class HTTPServer: @unchecked Sendable {
    /// How the server runs (the daemon fills it from `registryd.json`). A value type; `Sendable`.
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

    /// Answers one request; called on the worker thread that read it, from any number of
    /// workers at once.
    public typealias Handler = @Sendable (HTTPRequest, Peer) -> HTTPResponse

    /// What the server is doing, for metrics and tests: a snapshot. A value type; `Sendable`.
    public struct Counts: Sendable {
        /// Open connections, and requests being handled.
        public var connections = 0, inFlight = 0
        /// Busy polls that found the client's next request, and those that ran out.
        public var busyPollHits = 0, busyPollMisses = 0
    }

    public let configuration: Configuration
    private let handler: Handler
    private let log: Log
    private let clock: any MonotonicClock
    private let machineConfiguration: ConnectionStateMachine.Configuration
    private let poller: Poller
    private let listeners: ListenerSet
    private let connections: ConnectionTable
    private let busyPoller: BusyPoller
    /// The TCP listener's TLS context when it speaks HTTPS; set before ``start()``.
    private var tls: TLSContextHolder?
    /// Handshakes, their failures and the certificate in force (rendered into `/metrics`).
    public let tlsMetrics: TLSMetrics
    /// Set once by ``stop(deadline:)``; read on the serving path without a lock.
    private let stopping = Atomic<Bool>(false)
    private var threads: [Thread] = []
    private let finished = DispatchGroup()
    /// The TCP port actually bound (tests listen on port 0).
    public private(set) var tcpPort: Int?

    /// `clock` times the request and idle timeouts (the tests of the state machine drive one by
    /// hand; the server itself runs on the system's monotonic clock).
    public init(configuration: Configuration, log: Log, clock: any MonotonicClock = SystemMonotonicClock(),
                tlsMetrics: TLSMetrics = TLSMetrics(), handler: @escaping Handler) throws(RegistryError) {
        self.configuration = configuration
        self.tlsMetrics = tlsMetrics
        self.handler = handler
        self.log = log
        self.clock = clock
        machineConfiguration = ConnectionStateMachine.Configuration(
            requestTimeout: configuration.requestTimeout, idleTimeout: configuration.idleTimeout,
            limits: configuration.limits, busyPolling: configuration.busyPollMicroseconds > 0)
        poller = try Poller()
        listeners = ListenerSet(poller: poller, log: log)
        connections = ConnectionTable(capacity: configuration.maxConnections)
        busyPoller = BusyPoller(budgetMicroseconds: configuration.busyPollMicroseconds)
    }

    deinit {
        precondition(threads.isEmpty || stopping.load(ordering: .acquiring), "HTTPServer released while running: call stop()")
    }

    /// Listens on the control socket at `path`.
    public func listenUnix(path: String, mode: UInt32, group: String?) throws(RegistryError) {
        try listeners.listenUnix(path: path, mode: mode, group: group)
    }

    /// Listens on `address` (`host:port`) for serving traffic; in HTTPS with the certificate,
    /// key and optional client CA of `tls`, which are loaded and checked first (a problem throws
    /// naming the file, before anything listens).
    public func listenTCP(_ address: String, tls files: TLSFiles? = nil) throws(RegistryError) {
        if let files { tls = try TLSContextHolder(files: files, metrics: tlsMetrics, log: log) }
        tcpPort = try listeners.listenTCP(address)
    }

    /// Loads `files` again (SIGHUP: the same paths re-read, or new ones) and puts them in force
    /// for new connections; open connections keep theirs. Throws naming the file and the problem,
    /// keeping the certificate in force, when they do not load. Nothing to do without TLS.
    public func reloadTLS(_ files: TLSFiles?) throws(RegistryError) {
        guard let tls, let files else { return }
        try tls.reload(files, trigger: "reload")
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
        stopping.store(true, ordering: .releasing)
        listeners.closeAll { fd, peer in admit(fd, peer) }
        // The deadline is real time, whatever clock times the connections: a stop always ends.
        let limit = Date().addingTimeInterval(deadline)
        while connections.hasWork(now: clock.now()) && Date() < limit {
            usleep(2_000)
        }
        poller.wakeAll()
        _ = finished.wait(timeout: .now() + max(1, limit.timeIntervalSinceNow))
        connections.closeAll()
    }

    public var counts: Counts {
        let (open, inFlight) = connections.counts
        return Counts(connections: open, inFlight: inFlight, busyPollHits: busyPoller.hits.load(ordering: .relaxed),
                      busyPollMisses: busyPoller.misses.load(ordering: .relaxed))
    }

    // MARK: Workers

    private func workerLoop() {
        let capacity = 64 << 10
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let event: Poller.Event
            do {
                event = try poller.wait()
            } catch {
                log.error("epoll_wait failed; worker stops", ["error": error.message])
                return
            }
            busyPoller.activeWorkers.add(1, ordering: .relaxed)
            defer { busyPoller.activeWorkers.subtract(1, ordering: .relaxed) }
            switch event {
            case .wake:
                return
            case .listener(let fd):
                listeners.acceptAll(on: fd) { fd, peer in admit(fd, peer) }
            case .connection(let fd):
                if let connection = connections.take(fd) { serve(connection, buffer: buffer) }
            }
        }
    }

    /// Takes an accepted socket into the table and the poller, or refuses it with 503 when the
    /// table is full. A connection taken from the backlog is served even if the stop began
    /// meanwhile: the stop's own drain admits the same backlog, and a worker that was already
    /// accepting when the stop began must not answer it 503 (the client connected before the
    /// socket went away). Past the listener's close nothing more is accepted.
    private func admit(_ fd: Int32, _ peer: Peer) {
        let transport: any Transport
        if peer.listener == .serving, let tls {
            guard let secured = TLSTransport(descriptor: fd, context: tls.context, peerAddress: peer.address, metrics: tlsMetrics, log: log) else {
                log.error("cannot start a tls session; connection closed", ["peer": peer.address, "error": OpenSSLErrorQueue.message()])
                _ = close(fd)
                return
            }
            transport = secured
        } else {
            transport = PlainTransport(descriptor: fd)
        }
        let machine = ConnectionStateMachine(configuration: machineConfiguration, now: clock.now(), handshaking: transport.isHandshaking)
        guard connections.admit(Connection(transport: transport, peer: peer, machine: machine)) else {
            // Over TLS a plain-text answer means nothing before the handshake, and a handshake
            // costs the CPU the cap protects: the client sees the connection close.
            guard transport is PlainTransport else {
                transport.close()
                return
            }
            let refusal = HTTPResponse.error(503, "too many open connections (limit \(configuration.maxConnections)); retry later")
            // One try, never a wait: a client that does not read is not worth a worker.
            _ = refusal.serialized(keepAlive: false).withUnsafeBytes { transport.write($0) }
            transport.close()
            return
        }
        poller.armConnection(fd)
    }

    /// Carries out `connection`'s state machine from the poller's event until the connection
    /// goes back to the poller or closes.
    private func serve(_ connection: Connection, buffer: UnsafeMutableRawBufferPointer) {
        var action = connection.machine.readable()
        while true {
            switch action {
            case .read:
                action = connection.machine.read(read(connection.transport, into: buffer))
            case .write, .waitForWritable:
                action = flush(connection, action)
            case .handle(let request):
                // The handshake is over before the first request; its subject does not change.
                if connection.machine.answered == 0, let subject = connection.transport.peerSubject {
                    connection.peer.certificateSubject = subject
                }
                connections.beginRequest()
                let response = handler(request, connection.peer)
                action = flush(connection, connection.machine.respond(response, stopping: stopping.load(ordering: .acquiring)))
                // After the answer is written, whether or not it could be.
                response.afterSend?()
                connections.endRequest()
            case .awaitInput(let mayPoll):
                if mayPoll, let next = busyPoller.poll(connection, buffer: buffer) {
                    action = next
                    continue
                }
                // Read before the hand-over, after which the transport is not the worker's.
                let writable = connection.transport.needsWritable
                connection.machine.park(now: clock.now(), handshaking: connection.transport.isHandshaking)
                if connections.park(connection) { poller.armConnection(connection.transport.descriptor, writable: writable) }
                return
            case .close:
                connections.remove(connection)
                return
            }
        }
    }

    private func read(_ transport: any Transport, into buffer: UnsafeMutableRawBufferPointer) -> ConnectionStateMachine.Input {
        switch transport.read(into: buffer) {
        case .transferred(let count):
            return .bytes(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), filledBuffer: count == buffer.count)
        case .wouldBlock:
            return .wouldBlock
        case .closed:
            return .end
        }
    }

    /// Writes until the machine wants something else, waiting for a slow reader for at most the
    /// write timeout at a time.
    private func flush(_ connection: Connection, _ first: ConnectionStateMachine.Action) -> ConnectionStateMachine.Action {
        var action = first
        while true {
            switch action {
            case .write(let bytes):
                action = connection.machine.wrote(bytes.withUnsafeBytes { connection.transport.write($0) })
            case .waitForWritable:
                action = connection.machine.waited(writable: connection.transport.waitUntilWritable(timeout: configuration.writeTimeout))
            default:
                return action
            }
        }
    }

    // MARK: Timeouts

    /// Ticks the parked connections every quarter second, looks for changed certificate files
    /// every second, and after the control socket's name every 2 s.
    private func reaperLoop() {
        var ticks = 0
        while !stopping.load(ordering: .acquiring) {
            usleep(250_000)
            ticks += 1
            if ticks % 4 == 0 { tls?.reloadIfFilesChanged() }
            if ticks % 8 == 0 { listeners.restoreDeletedSockets() }
            connections.tick(now: clock.now())
        }
    }
}
