import Synchronization
import Testing
import Wire
@testable import Registry

/// A monotonic clock moved by hand.
final class HandClock: MonotonicClock {
    private let time = Mutex<Double>(100)
    func now() -> Double { time.withLock { $0 } }
    func advance(by seconds: Double) { time.withLock { $0 += seconds } }
}

/// One connection's state machine driven event by event, the way `HTTPServer` drives it, with
/// the time taken from a hand-driven clock. Each step returns the machine's action as a short
/// text (`read`, `write HTTP/1.1 200 OK`, `handle GET /a`, `await input`, `close`), so that a
/// test reads as the exchange it specifies.
private struct Exchange {
    let clock = HandClock()
    var machine: ConnectionStateMachine
    /// Everything written so far, as text.
    var written = ""
    /// The bytes of the last `write` action, not yet reported written.
    var pending: ArraySlice<UInt8> = []

    init(requestTimeout: Double = 30, idleTimeout: Double = 300, busyPolling: Bool = false, handshaking: Bool = false) {
        machine = ConnectionStateMachine(
            configuration: .init(requestTimeout: requestTimeout, idleTimeout: idleTimeout, busyPolling: busyPolling), now: clock.now(),
            handshaking: handshaking)
    }

    mutating func readable() -> String { note(machine.readable()) }

    mutating func receive(_ text: String, filledBuffer: Bool = false) -> String {
        let bytes = Array(text.utf8)
        return note(bytes.withUnsafeBytes { machine.read(.bytes($0, filledBuffer: filledBuffer)) })
    }

    mutating func receiveNothingMore() -> String { note(machine.read(.wouldBlock)) }

    mutating func receiveEnd() -> String { note(machine.read(.end)) }

    mutating func respond(status: Int = 200, body: String = "ok", stopping: Bool = false) -> String {
        note(machine.respond(HTTPResponse(status: status, body: Array(body.utf8)), stopping: stopping))
    }

    /// The transport takes `count` bytes of the pending write (all of them by default).
    mutating func wrote(_ count: Int? = nil) -> String {
        let count = count ?? pending.count
        written += String(decoding: pending.prefix(count), as: UTF8.self)
        return note(machine.wrote(.transferred(count)))
    }

    /// The whole exchange of one request on a parked connection: taken from the poller, the
    /// request read, answered, the answer written. Returns what comes after the write.
    mutating func answer(_ request: String, body: String = "ok", stopping: Bool = false) -> String {
        _ = readable()
        _ = receive(request)
        _ = respond(body: body, stopping: stopping)
        return wrote()
    }

    /// The transport takes none of the pending write; then the wait for it ends.
    mutating func writeBlocked() -> String { note(machine.wrote(.wouldBlock)) }

    mutating func waited(writable: Bool) -> String { note(machine.waited(writable: writable)) }

    mutating func writeBroke() -> String { note(machine.wrote(.closed)) }

    /// A busy poll finds `text`.
    mutating func polled(_ text: String) -> String {
        let bytes = Array(text.utf8)
        return note(bytes.withUnsafeBytes { machine.polled(.bytes($0, filledBuffer: false)) })
    }

    mutating func park(handshaking: Bool = false) { machine.park(now: clock.now(), handshaking: handshaking) }

    mutating func tick(after seconds: Double) -> ConnectionStateMachine.TickAction {
        clock.advance(by: seconds)
        return machine.tick(now: clock.now())
    }

    private mutating func note(_ action: ConnectionStateMachine.Action) -> String {
        switch action {
        case .read:
            return "read"
        case .write(let bytes):
            pending = bytes
            let line = bytes.prefix { $0 != UInt8(ascii: "\r") }
            return "write " + String(decoding: line, as: UTF8.self)
        case .waitForWritable:
            return "wait for writable"
        case .handle(let request):
            return "handle \(request.method) \(request.target)" + (request.body.isEmpty ? "" : " " + String(decoding: request.body, as: UTF8.self))
        case .awaitInput(let mayPoll):
            return mayPoll ? "await input, may poll" : "await input"
        case .close:
            return "close"
        }
    }
}

@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    @Test("a request that arrives in pieces is handled once, when its last byte is in; the connection waits in the poller between pieces")
    func requestInPieces() {
        var exchange = Exchange()
        #expect(exchange.readable() == "read")
        #expect(exchange.receive("GET /a HT") == "await input")
        exchange.park()
        #expect(exchange.readable() == "read")
        #expect(exchange.receive("TP/1.1\r\nHost: x\r") == "await input")
        exchange.park()
        #expect(exchange.readable() == "read")
        #expect(exchange.receive("\n\r\n") == "handle GET /a")
    }

    @Test("a read that fills the buffer asks for another read before parsing")
    func fullBufferReadsAgain() {
        var exchange = Exchange()
        _ = exchange.readable()
        #expect(exchange.receive("GET /a HTTP/1.1\r\n", filledBuffer: true) == "read")
        #expect(exchange.receive("\r\n") == "handle GET /a")
    }

    @Test("pipelined requests are handled one after another, each answer written before the next request is handled")
    func pipelined() {
        var exchange = Exchange()
        _ = exchange.readable()
        let two = "POST /first HTTP/1.1\r\nContent-Length: 3\r\n\r\nonePOST /second HTTP/1.1\r\nContent-Length: 3\r\n\r\ntwo"
        #expect(exchange.receive(two) == "handle POST /first one")
        #expect(exchange.respond(body: "1") == "write HTTP/1.1 200 OK")
        #expect(exchange.wrote() == "handle POST /second two")
        #expect(exchange.respond(body: "2") == "write HTTP/1.1 200 OK")
        #expect(exchange.wrote() == "await input")
        #expect(exchange.written == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")
        #expect(exchange.machine.answered == 2)
    }

    @Test("a request not received whole within the request timeout is answered 408 and closed")
    func slowRequest() {
        var exchange = Exchange(requestTimeout: 30)
        _ = exchange.readable()
        #expect(exchange.receive("GET /slow HTTP/1.1\r\n") == "await input")
        exchange.park()
        #expect(exchange.tick(after: 29) == .none)
        #expect(exchange.tick(after: 2) == .shutDownInput)
        #expect(exchange.tick(after: 1) == .none, "a connection times out once")
        // The shut read side wakes the connection with end of input.
        #expect(exchange.readable() == "read")
        #expect(exchange.receiveEnd() == "write HTTP/1.1 408 Request Timeout")
        #expect(exchange.wrote() == "close")
        #expect(exchange.written.contains("Connection: close"))
        #expect(exchange.written.contains("request not received within 30 s"))
    }

    @Test("the request timeout runs from the first piece of a request, not from the last")
    func requestTimeoutFromFirstByte() {
        var exchange = Exchange(requestTimeout: 10, idleTimeout: 300)
        _ = exchange.readable()
        #expect(exchange.receive("GET") == "await input")
        exchange.park()
        #expect(exchange.tick(after: 6) == .none)
        _ = exchange.readable()
        #expect(exchange.receive(" /a") == "await input")
        exchange.park()
        #expect(exchange.tick(after: 5) == .shutDownInput)
    }

    @Test("a TLS handshake not completed within the request timeout of the accept is closed without an answer, across parks; once it completes the idle timeout applies")
    func handshakeTimeout() {
        // A client that connects and sends nothing: no worker ever takes it, the timeout still runs.
        var silent = Exchange(requestTimeout: 30, idleTimeout: 300, handshaking: true)
        #expect(silent.tick(after: 29) == .none)
        #expect(silent.tick(after: 2) == .shutDownInput)
        #expect(silent.readable() == "read")
        #expect(silent.receiveEnd() == "close")
        #expect(silent.written.isEmpty)
        // A handshake that progresses but never completes: parking again does not restart the clock.
        var slow = Exchange(requestTimeout: 30, idleTimeout: 300, handshaking: true)
        #expect(slow.readable() == "read")
        #expect(slow.receiveNothingMore() == "await input")
        slow.park(handshaking: true)
        #expect(slow.tick(after: 20) == .none)
        _ = slow.readable()
        _ = slow.receiveNothingMore()
        slow.park(handshaking: true)
        #expect(slow.tick(after: 11) == .shutDownInput)
        // Completed without a request yet: an idle connection, under the idle timeout.
        var established = Exchange(requestTimeout: 30, idleTimeout: 300, handshaking: true)
        _ = established.readable()
        _ = established.receiveNothingMore()
        established.park(handshaking: false)
        #expect(established.tick(after: 31) == .none)
        #expect(established.tick(after: 270) == .shutDownInput)
    }

    @Test("an idle keep-alive connection is closed without an answer after the idle timeout")
    func idleKeepAlive() {
        var exchange = Exchange(requestTimeout: 30, idleTimeout: 300)
        _ = exchange.readable()
        #expect(exchange.receive("GET /a HTTP/1.1\r\n\r\n") == "handle GET /a")
        #expect(exchange.respond() == "write HTTP/1.1 200 OK")
        #expect(exchange.wrote() == "await input")
        exchange.park()
        // Between requests the idle timeout applies, not the request timeout.
        #expect(exchange.tick(after: 299) == .none)
        #expect(exchange.tick(after: 2) == .shutDownInput)
        #expect(exchange.readable() == "read")
        #expect(exchange.receiveEnd() == "close")
        #expect(exchange.written == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    }

    @Test("a write the transport takes in part goes on from where it stopped, and waits when the transport takes nothing")
    func partialWrite() {
        var exchange = Exchange()
        _ = exchange.readable()
        _ = exchange.receive("GET /a HTTP/1.1\r\n\r\n")
        #expect(exchange.respond(body: "0123456789") == "write HTTP/1.1 200 OK")
        #expect(exchange.wrote(13) == "write OK")
        #expect(exchange.writeBlocked() == "wait for writable")
        #expect(exchange.waited(writable: true) == "write OK")
        #expect(exchange.wrote(26) == "write 0123456789")
        #expect(exchange.wrote() == "await input")
        #expect(exchange.written == "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
    }

    @Test("a client that does not read within the write timeout, or a broken connection, closes it")
    func failedWrite() {
        for broken in [false, true] {
            var exchange = Exchange()
            _ = exchange.readable()
            _ = exchange.receive("GET /a HTTP/1.1\r\n\r\n")
            _ = exchange.respond()
            if broken {
                #expect(exchange.writeBroke() == "close")
            } else {
                #expect(exchange.writeBlocked() == "wait for writable")
                #expect(exchange.waited(writable: false) == "close")
            }
        }
    }

    @Test("after Connection: close the answer says so and the connection closes once it is written, leaving what followed unread")
    func connectionClose() {
        var exchange = Exchange()
        _ = exchange.readable()
        #expect(exchange.receive("GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n") == "handle GET /a")
        #expect(exchange.respond() == "write HTTP/1.1 200 OK")
        #expect(exchange.wrote() == "close")
        #expect(exchange.written.contains("Connection: close\r\n"))
    }

    @Test("an HTTP/1.0 request without keep-alive, a client that ended its input, and a stopping server each get a closing answer")
    func closingAnswers() {
        var old = Exchange()
        #expect(old.answer("GET /a HTTP/1.0\r\n\r\n") == "close")
        var ended = Exchange()
        _ = ended.readable()
        // The request filled the read buffer; the next read finds the end.
        #expect(ended.receive("GET /a HTTP/1.1\r\n\r\n", filledBuffer: true) == "read")
        #expect(ended.receiveEnd() == "handle GET /a")
        _ = ended.respond()
        #expect(ended.wrote() == "close")
        #expect(ended.written.contains("Connection: close"))
        var stopping = Exchange()
        #expect(stopping.answer("GET /a HTTP/1.1\r\n\r\n", stopping: true) == "close")
        #expect(stopping.written.contains("Connection: close"))
    }

    @Test("a client that ends its input between requests is closed; one that ends it mid-request is closed without an answer")
    func endOfInput() {
        var between = Exchange()
        _ = between.readable()
        #expect(between.receiveEnd() == "close")
        var mid = Exchange()
        _ = mid.readable()
        #expect(mid.receive("POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\n{") == "await input")
        mid.park()
        _ = mid.readable()
        #expect(mid.receiveEnd() == "close")
    }

    @Test("Expect: 100-continue is answered 100 before the body is read, and the request is handled once the body is in")
    func continueExpected() {
        var exchange = Exchange()
        _ = exchange.readable()
        #expect(exchange.receive("POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n") == "write HTTP/1.1 100 Continue")
        #expect(exchange.wrote() == "await input")
        exchange.park()
        _ = exchange.readable()
        #expect(exchange.receive("body") == "handle POST /a body")
    }

    @Test("malformed input is answered with the parser's status and closed")
    func malformed() {
        var exchange = Exchange()
        _ = exchange.readable()
        #expect(exchange.receive("GARBAGE\r\n\r\n") == "write HTTP/1.1 400 Bad Request")
        #expect(exchange.wrote() == "close")
        #expect(exchange.written.contains("{\"error\":"))
    }

    @Test("HEAD is answered with the head alone")
    func head() {
        var exchange = Exchange()
        _ = exchange.answer("HEAD /a HTTP/1.1\r\n\r\n", body: "not sent")
        #expect(exchange.written == "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
    }

    @Test("busy polling: only between requests on an answered connection, at most 16 polled answers in a row, and 15 chances skipped after a poll that ran out")
    func busyPolling() {
        var exchange = Exchange(busyPolling: true)
        _ = exchange.readable()
        // Not before the first answer: the client has not shown that it sends at once.
        #expect(exchange.receiveNothingMore() == "await input")
        _ = exchange.receive("GET /0 HTTP/1.1\r\n\r\n")
        _ = exchange.respond()
        #expect(exchange.wrote() == "await input, may poll")
        for index in 1...16 {
            #expect(exchange.polled("GET /\(index) HTTP/1.1\r\n\r\n") == "handle GET /\(index)")
            _ = exchange.respond()
            #expect(exchange.wrote() == (index < 16 ? "await input, may poll" : "await input"), "after \(index) polled answers")
        }
        // A poll's budget runs out: the connection parks, and its next 15 chances are skipped.
        exchange.machine.pollRanOut()
        exchange.park()
        for chance in 1...16 {
            #expect(exchange.answer("GET /a HTTP/1.1\r\n\r\n") == (chance <= 15 ? "await input" : "await input, may poll"), "chance \(chance)")
            exchange.park()
        }
        // Never in the middle of a request.
        _ = exchange.readable()
        #expect(exchange.receive("GET /b HTTP/1.1\r\n") == "await input")
    }

    @Test("busy polling off: never offered")
    func busyPollingOff() {
        var exchange = Exchange(busyPolling: false)
        #expect(exchange.answer("GET /a HTTP/1.1\r\n\r\n") == "await input")
    }

    @Test("the stop waits for a connection mid-request or accepted less than a second ago, not for an idle answered one")
    func expectsRequest() {
        var exchange = Exchange()
        #expect(exchange.machine.expectsRequest(now: exchange.clock.now() + 0.5))
        #expect(!exchange.machine.expectsRequest(now: exchange.clock.now() + 1.5))
        _ = exchange.answer("GET /a HTTP/1.1\r\n\r\n")
        exchange.park()
        #expect(!exchange.machine.expectsRequest(now: exchange.clock.now()))
        _ = exchange.readable()
        _ = exchange.receive("GET /b")
        exchange.park()
        #expect(exchange.machine.expectsRequest(now: exchange.clock.now() + 100))
    }
}
