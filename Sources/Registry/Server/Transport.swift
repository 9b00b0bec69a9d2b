/// What one read or write on a ``Transport`` did. A value type; `Sendable`.
enum TransportResult: Sendable, Equatable {
    /// This many bytes (more than zero) were read or written.
    case transferred(Int)
    /// Nothing can move now without blocking: wait for the poller (a read) or for
    /// ``Transport/waitUntilWritable(timeout:)`` (a write).
    case wouldBlock
    /// The peer closed, or the connection broke: no more bytes will move in this direction.
    case closed
}

/// The byte stream under the HTTP codec on one accepted connection: the only place the server
/// reads, writes, shuts down or closes a connection. ``PlainTransport`` moves bytes straight
/// through the socket; ``TLSTransport`` implements the same calls over a TLS session (its
/// handshake runs inside ``read(into:)``), so the server, its state machine and its busy
/// polling are the same for both.
///
/// Every call is non-blocking except ``waitUntilWritable(timeout:)``. The socket is already
/// non-blocking (accepted with `SOCK_NONBLOCK`).
///
/// Thread-safety: a connection's transport is used by one thread at a time, the worker that owns
/// the connection (the poller hands a connection to one worker, `EPOLLONESHOT`), except that the
/// reaper may call ``shutdownReading()`` and the stop may call ``hasPendingInput()`` while the
/// connection waits in the poller, under the connection table's lock; implementations must make
/// those two safe then.
protocol Transport: Sendable {
    /// The socket to register with the poller.
    var descriptor: Int32 { get }
    /// Reads what is available into `buffer`, retrying interrupted calls.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult
    /// Writes as much of `bytes` as the connection takes now, retrying interrupted calls.
    /// Never raises SIGPIPE on a closed peer.
    func write(_ bytes: UnsafeRawBufferPointer) -> TransportResult
    /// Waits until a write can make progress, for at most `timeout` seconds; false when the
    /// time ran out or the connection broke.
    func waitUntilWritable(timeout: Double) -> Bool
    /// Whether input is waiting to be read (without consuming it).
    func hasPendingInput() -> Bool
    /// Ends the read side: the peer's later bytes are discarded, and a worker waiting in the
    /// poller for this connection wakes to end of input.
    func shutdownReading()
    /// Releases the connection. Called exactly once; closing also removes it from the poller.
    func close()

    /// Whether the transport's own handshake (TLS) has not completed yet: the request timeout
    /// bounds it as it bounds a request in progress. Read by the owner, before it parks.
    var isHandshaking: Bool { get }
    /// Whether a read waits for the socket to become writable rather than readable (a TLS
    /// handshake whose flight did not fit the socket's buffer): the poller arms for that.
    var needsWritable: Bool { get }
    /// The subject of the client's certificate (RFC 2253) once a mutual-TLS handshake has
    /// completed; nil otherwise.
    var peerSubject: String? { get }
}
