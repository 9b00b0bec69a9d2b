import Foundation
import Wire

/// One connection's HTTP/1.1 exchange as a pure state machine, in SwiftNIO's manner: the worker
/// that owns the connection reports what it read and what it wrote, the reaper reports clock
/// ticks, and each event returns the one thing to do next (read, write, wait, run the handler,
/// wait for input, close). It makes no system call and reads no clock: times come in as
/// arguments, so tests drive it by hand.
///
/// What it decides: framing (``HTTPRequestParser``; pipelined requests one after another),
/// `100 Continue`, keep-alive (the request asks for it, the peer has not ended its input and the
/// server is not stopping), the request timeout (first byte of a request to its last) and the
/// idle timeout (between requests) with their 408 or silent close, a response written in as many
/// pieces as the transport takes, and when the worker may busy-poll for the next request.
///
/// Lifecycle: it starts *parked* (waiting in the poller). ``readable()`` hands it to a worker;
/// the worker follows the actions until ``Action/awaitInput(mayPoll:)`` (then ``park(now:)``,
/// and the connection goes back to the poller) or ``Action/close``. ``tick(now:)`` is for a
/// parked machine only.
///
/// Thread-safety: a value type, owned by one thread at a time: the worker that took the
/// connection from the poller, or, while the connection is parked, ``ConnectionTable``'s lock
/// (the reaper's ticks and the stop's checks run under it). Parking and taking happen under
/// that lock, which orders one owner's changes before the next owner's reads.
struct ConnectionStateMachine {
    /// The server's settings that shape every connection. A value type; `Sendable`.
    struct Configuration: Sendable {
        /// From the first byte of a request to its last.
        var requestTimeout: Double
        /// From an answer (or the connection's accept) to the next request's first byte.
        var idleTimeout: Double
        var limits = HTTPRequestParser.Limits()
        /// Whether the server busy-polls answered connections at all.
        var busyPolling = false
    }

    /// The one thing the owner of the connection does next, then reports back. A value type.
    enum Action {
        /// Read what the transport holds and report it with ``read(_:)``.
        case read
        /// Write these bytes and report the outcome with ``wrote(_:)``.
        case write(ArraySlice<UInt8>)
        /// The transport took nothing: wait (at most the write timeout) until it can take more,
        /// then report with ``waited(writable:)``.
        case waitForWritable
        /// Run the handler on this request and report its response with ``respond(_:stopping:)``.
        case handle(HTTPRequest)
        /// Nothing to do until the peer sends more. With `mayPoll` the worker may busy-poll for
        /// it (reporting with ``polled(_:)`` or ``pollRanOut()``); in the end it reports
        /// ``park(now:)`` and hands the connection back to the poller.
        case awaitInput(mayPoll: Bool)
        /// Close the connection (after the last answer, if any, was written).
        case close
    }

    /// What a clock tick asks of a parked connection. A value type.
    enum TickAction: Equatable {
        case none
        /// The connection is late: shut its read side, so that it wakes with end of input and its
        /// owner answers 408 (a request in progress) or closes it (an idle one).
        case shutDownInput
    }

    /// What one read brought. A value type that borrows the read buffer: valid only during the
    /// call it is passed to.
    enum Input {
        /// Bytes; `filledBuffer`: the read filled its buffer, so more may be waiting.
        case bytes(UnsafeRawBufferPointer, filledBuffer: Bool)
        case wouldBlock
        /// End of input: the peer closed or shut down its side, or the connection broke.
        case end
    }

    private enum Phase {
        /// Waiting in the poller: no worker owns the connection.
        case parked
        /// A worker owns it and is reading or parsing.
        case owned
        /// The handler has a request; the answer comes through ``respond(_:stopping:)``.
        case handling
        /// Writing `output`.
        case writing
        case closed
    }

    /// Answered to `Expect: 100-continue` before the body is read.
    private static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
    /// Busy-polled requests served in a row before the connection goes back to the poller, so
    /// that with a single worker one eager client cannot keep it from the others.
    static let maxPolledInARow = 16
    /// Chances to busy-poll skipped after a poll that ran out: a client that pauses between
    /// requests costs at most one poll budget per this many answers plus one.
    static let skipsAfterPollRanOut = 15

    let configuration: Configuration
    private var phase = Phase.parked
    private var parser: HTTPRequestParser
    /// The peer ended its input (or the reaper shut it): answer what is whole, then close.
    private var inputEnded = false
    /// The reaper found the connection late.
    private(set) var timedOut = false
    private let accepted: Double
    private var lastActivity: Double
    /// When the request in progress was first seen in part; nil between requests.
    private var requestStarted: Double?
    /// Responses written (or being written) on this connection.
    private(set) var answered = 0
    /// The request being handled: whether it asked to keep the connection, and whether it was a
    /// `HEAD` (its answer has no body).
    private var requestKeepsAlive = false
    private var requestIsHead = false
    /// What is being written, how much of it went, and whether the connection closes after it.
    private var output: [UInt8] = []
    private var written = 0
    private var closeAfterOutput = false
    private var polledInARow = 0
    private var pollSkips = 0

    /// A connection accepted at `now`, parked until its first input. `handshaking`: its
    /// transport starts with a handshake (TLS), which must complete within the request timeout
    /// from the accept, as a request must; a client that connects and sends nothing is dropped
    /// then, not after the idle timeout.
    init(configuration: Configuration, now: Double, handshaking: Bool = false) {
        self.configuration = configuration
        parser = HTTPRequestParser(limits: configuration.limits)
        accepted = now
        lastActivity = now
        if handshaking { requestStarted = now }
    }

    // MARK: Events from the worker that owns the connection

    /// The poller handed the connection to a worker.
    mutating func readable() -> Action {
        precondition(phase == .parked, "a connection taken from the poller twice")
        phase = .owned
        polledInARow = 0
        return .read
    }

    /// What a read brought.
    mutating func read(_ input: Input) -> Action {
        precondition(phase == .owned, "a read reported while the connection is \(phase)")
        switch input {
        case .bytes(let bytes, let filledBuffer):
            parser.append(bytes)
            if filledBuffer { return .read }
        case .wouldBlock:
            break
        case .end:
            inputEnded = true
        }
        return advance()
    }

    /// What a busy poll found: input, or its end (a poll that found nothing reports
    /// ``pollRanOut()`` or nothing).
    mutating func polled(_ input: Input) -> Action {
        polledInARow += 1
        return read(input)
    }

    /// A busy poll ran out of budget without input: the next chances are skipped.
    mutating func pollRanOut() {
        pollSkips = ConnectionStateMachine.skipsAfterPollRanOut
    }

    /// The handler's answer to the request of the last ``Action/handle(_:)``.
    mutating func respond(_ response: HTTPResponse, stopping: Bool) -> Action {
        precondition(phase == .handling, "a response without a request")
        let keepAlive = requestKeepsAlive && !inputEnded && !stopping
        answered += 1
        requestStarted = nil
        return send(response.serialized(keepAlive: keepAlive, headOnly: requestIsHead), thenClose: !keepAlive)
    }

    /// What a write of the last ``Action/write(_:)`` did.
    mutating func wrote(_ result: TransportResult) -> Action {
        precondition(phase == .writing, "a write reported with nothing to write")
        switch result {
        case .transferred(let count):
            written += count
            if written < output.count { return .write(output[written...]) }
            output = []
            written = 0
            phase = .owned
            return closeAfterOutput ? close() : advance()
        case .wouldBlock:
            return .waitForWritable
        case .closed:
            return close()
        }
    }

    /// The wait of ``Action/waitForWritable`` ended: the transport can take more, or the write
    /// timeout passed (or the connection broke).
    mutating func waited(writable: Bool) -> Action {
        precondition(phase == .writing, "a write wait reported with nothing to write")
        return writable ? .write(output[written...]) : close()
    }

    /// The worker hands the connection back to the poller at `now`: the idle or the request
    /// timeout runs from here. `handshaking`: the transport's handshake has not completed; the
    /// request timeout bounds it, from the accept.
    mutating func park(now: Double, handshaking: Bool = false) {
        precondition(phase == .owned && !inputEnded && !timedOut, "parking a connection that must close")
        lastActivity = now
        if parser.isMidRequest || handshaking {
            if requestStarted == nil { requestStarted = now }
        } else {
            requestStarted = nil
        }
        phase = .parked
    }

    // MARK: Events from the reaper and the stop (under the table's lock)

    /// A clock tick, for a parked connection: whether it is now late.
    mutating func tick(now: Double) -> TickAction {
        precondition(phase == .parked, "a tick for a connection a worker owns")
        guard !timedOut else { return .none }
        let late: Bool
        if let requestStarted {
            late = now - requestStarted > configuration.requestTimeout
        } else {
            late = now - lastActivity > configuration.idleTimeout
        }
        guard late else { return .none }
        timedOut = true
        return .shutDownInput
    }

    /// Whether a request has arrived in part, or may be about to: the connection was accepted
    /// less than a second ago and has not sent a request yet (its client connected and is
    /// writing one). The stop waits for such connections; for a parked connection only.
    func expectsRequest(now: Double) -> Bool {
        parser.isMidRequest || (answered == 0 && now - accepted < 1)
    }

    // MARK: Decisions

    /// The next step once the input read so far has been added: a request, `100 Continue`, a
    /// refusal, or waiting for more.
    private mutating func advance() -> Action {
        switch parser.next() {
        case .needMore:
            if timedOut {
                guard parser.isMidRequest else { return close() }
                let limit = String(format: "%g", configuration.requestTimeout)
                return send(HTTPResponse.error(408, "request not received within \(limit) s").serialized(keepAlive: false), thenClose: true)
            }
            if inputEnded { return close() }
            return .awaitInput(mayPoll: mayPoll())
        case .continueExpected:
            return send(ConnectionStateMachine.continueResponse, thenClose: false)
        case .request(let request):
            requestKeepsAlive = request.keepAlive
            requestIsHead = request.method == "HEAD"
            phase = .handling
            return .handle(request)
        case .failure(let failure):
            return send(HTTPResponse.error(failure.status, failure.message).serialized(keepAlive: false), thenClose: true)
        }
    }

    /// Whether the worker may busy-poll for the next request: only between requests on a
    /// connection that has been answered (a client in a loop), at most ``maxPolledInARow`` in a
    /// row, and not during the skips that follow a poll that ran out.
    private mutating func mayPoll() -> Bool {
        guard configuration.busyPolling, !parser.isMidRequest, answered > 0, polledInARow < ConnectionStateMachine.maxPolledInARow else { return false }
        guard pollSkips == 0 else {
            pollSkips -= 1
            return false
        }
        return true
    }

    private mutating func send(_ bytes: [UInt8], thenClose: Bool) -> Action {
        output = bytes
        written = 0
        closeAfterOutput = thenClose
        phase = .writing
        return .write(output[...])
    }

    private mutating func close() -> Action {
        phase = .closed
        output = []
        return .close
    }
}
