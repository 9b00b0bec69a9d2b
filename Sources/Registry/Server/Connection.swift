/// An accepted connection: its transport, who is on the other end, its exchange's state machine,
/// and whether it waits in the poller.
///
/// Thread-safety: not thread-safe by itself; ``ConnectionTable`` hands it over. `parked` is
/// guarded by the table's lock. `machine`, and `peer` (which learns the client certificate's
/// subject once a mutual-TLS handshake completes), belong to the worker that took the connection from
/// the poller (``ConnectionTable/take(_:)``) until it parks it again
/// (``ConnectionTable/park(_:)``), and to the table's lock while it is parked; the transport
/// follows the rules of ``Transport``.
final class Connection {
    let transport: any Transport
    var peer: HTTPServer.Peer
    var machine: ConnectionStateMachine
    /// Waiting in the poller (no worker owns it). Guarded by the table's lock.
    var parked = true

    init(transport: any Transport, peer: HTTPServer.Peer, machine: ConnectionStateMachine) {
        self.transport = transport
        self.peer = peer
        self.machine = machine
    }
}
