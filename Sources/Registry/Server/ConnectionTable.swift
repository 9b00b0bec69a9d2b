import Foundation

/// The open connections and the count of requests being handled: what the workers, the reaper,
/// the stop and the metrics share, behind one lock. A connection is *parked* (waiting in the
/// poller, reachable by the reaper's ticks and the stop's checks under the lock) or *owned* by
/// the one worker that took it (`EPOLLONESHOT` delivers each readiness to one worker); the lock
/// is taken at each hand-over, so each owner sees the previous one's changes.
///
/// On the serving path a request costs four acquisitions: the take, the request's start and
/// end (``beginRequest()``, ``endRequest()``), and the park; a busy-polled request only the
/// middle two. Each is contended by every worker under load, so nothing else takes this lock
/// per request.
///
/// Thread-safety: thread-safe; all state is guarded by `lock` (hence `@unchecked Sendable`). An
/// `NSLock` rather than a `Mutex`: the table hands a `Connection` (a class, owned by one worker
/// at a time) out from under the lock while keeping it in the table, which `Mutex`'s `sending`
/// rules refuse.
final class ConnectionTable: @unchecked Sendable {
    /// Open connections beyond this are refused.
    let capacity: Int
    private let lock = NSLock()
    private var connections: [Int32: Connection] = [:]
    private var inFlight = 0
    /// Set by ``closeAll()``: every connection is closed, and none may be touched again.
    private var closedAll = false

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Adds a new, parked connection; false when the table is full or the stop has closed it
    /// (the caller refuses the connection).
    func admit(_ connection: Connection) -> Bool {
        lock.withLock {
            guard connections.count < capacity, !closedAll else { return false }
            connection.parked = true
            connections[connection.transport.descriptor] = connection
            return true
        }
    }

    /// The connection the poller reported ready, now owned by the caller; nil when it is gone.
    func take(_ descriptor: Int32) -> Connection? {
        lock.withLock {
            guard let connection = connections[descriptor] else { return nil }
            connection.parked = false
            return connection
        }
    }

    /// Hands a connection back: from here the caller must not touch its state machine, and
    /// re-arms the connection in the poller when this returns true. False after ``closeAll()``:
    /// the connection is closed, and its number may belong to another file by now.
    func park(_ connection: Connection) -> Bool {
        lock.withLock {
            connection.parked = true
            return !closedAll
        }
    }

    /// Forgets an owned connection and closes it. The close happens under the lock, so the
    /// descriptor's number cannot be reused by an accept and admitted before it leaves the table.
    /// After ``closeAll()`` (a worker that outlived the stop's deadline) the connection is
    /// already closed, and not closed again: its number may belong to another file by now.
    func remove(_ connection: Connection) {
        lock.withLock {
            guard !closedAll else { return }
            connections[connection.transport.descriptor] = nil
            connection.transport.close()
        }
    }

    func beginRequest() {
        lock.withLock { inFlight += 1 }
    }

    func endRequest() {
        lock.withLock { inFlight -= 1 }
    }

    /// Open connections, and requests being handled.
    var counts: (connections: Int, inFlight: Int) {
        lock.withLock { (connections.count, inFlight) }
    }

    /// The reaper's tick: every parked connection found late has its read side shut, which
    /// wakes it in the poller; the worker that takes it answers 408 or closes it.
    func tick(now: Double) {
        lock.withLock {
            for connection in connections.values where connection.parked {
                if connection.machine.tick(now: now) == .shutDownInput {
                    connection.transport.shutdownReading()
                }
            }
        }
    }

    /// Whether any request is being handled, or has arrived (whole or in part) and waits for a
    /// worker, or may be about to (``ConnectionStateMachine/expectsRequest(now:)``). An owned
    /// connection counts as busy; a parked one is quiescent, so its machine may be read here.
    func hasWork(now: Double) -> Bool {
        lock.withLock {
            inFlight > 0 || connections.values.contains { connection in
                !connection.parked || connection.machine.expectsRequest(now: now) || connection.transport.hasPendingInput()
            }
        }
    }

    /// Closes every connection left (at the end of the stop, once the workers have exited).
    func closeAll() {
        lock.withLock {
            for connection in connections.values { connection.transport.close() }
            connections.removeAll()
            closedAll = true
        }
    }
}
