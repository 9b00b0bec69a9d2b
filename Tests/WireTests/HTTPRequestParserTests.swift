import Testing
@testable import Wire

private func parse(_ text: String, limits: HTTPRequestParser.Limits = .init()) -> [HTTPRequestParser.Outcome] {
    var parser = HTTPRequestParser(limits: limits)
    parser.append(Array(text.utf8))
    var outcomes: [HTTPRequestParser.Outcome] = []
    while true {
        let outcome = parser.next()
        outcomes.append(outcome)
        switch outcome {
        case .request, .continueExpected: continue
        default: return outcomes
        }
    }
}

private func failure(_ text: String, limits: HTTPRequestParser.Limits = .init()) -> HTTPRequestParser.Failure? {
    if case .failure(let f) = parse(text, limits: limits).last { return f }
    return nil
}

@Suite("HTTP/1.1 request parser")
struct HTTPRequestParserTests {
    @Test("a request with a body, then a pipelined one, each come out whole")
    func pipelined() {
        let outcomes = parse("POST /v2/models/m/infer?x=1&y=a%20b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /v2 HTTP/1.1\r\n\r\n")
        guard case .request(let first) = outcomes[0], case .request(let second) = outcomes[1] else {
            Issue.record("expected two requests, got \(outcomes)")
            return
        }
        #expect(first.method == "POST" && first.path == "/v2/models/m/infer" && first.body == Array("hello".utf8))
        #expect(first.queryValue("y") == "a b" && first.queryValue("x") == "1")
        #expect(first.headers["host"] == "h" && first.keepAlive)
        #expect(second.path == "/v2" && second.body.isEmpty)
        guard case .needMore = outcomes[2] else { Issue.record("expected needMore"); return }
    }

    @Test("bytes arriving one at a time make the same request")
    func byteByByte() {
        var parser = HTTPRequestParser()
        let text = Array("PUT /a HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc".utf8)
        var result: HTTPRequest?
        for byte in text {
            parser.append([byte])
            if case .request(let r) = parser.next() { result = r }
        }
        #expect(result?.body == Array("abc".utf8))
        #expect(result?.keepAlive == false)
    }

    @Test("Expect: 100-continue is answered once before the body")
    func expectContinue() {
        var parser = HTTPRequestParser()
        parser.append(Array("POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n".utf8))
        guard case .continueExpected = parser.next() else { Issue.record("expected 100-continue"); return }
        guard case .needMore = parser.next() else { Issue.record("expected needMore"); return }
        parser.append(Array("ok".utf8))
        guard case .request(let r) = parser.next() else { Issue.record("expected the request"); return }
        #expect(r.body == Array("ok".utf8))
    }

    @Test("malformed heads are refused with the status and a message that names the problem",
          arguments: [
            ("GARBAGE\r\n\r\n", 400, "malformed request line"),
            ("GET /x HTTP/2.0\r\n\r\n", 505, "not supported"),
            ("GET x HTTP/1.1\r\n\r\n", 400, "target"),
            ("GET /x HTTP/1.1\nHost: a\n\n", 400, "bare LF"),
            ("GET /x HTTP/1.1\r\nHost a\r\n\r\n", 400, "no ':'"),
            ("GET /x HTTP/1.1\r\n folded\r\n\r\n", 400, "folding"),
            ("POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, "conflicting Content-Length"),
            ("POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "invalid Content-Length"),
            ("POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, "invalid Content-Length"),
            ("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "Content-Length"),
            ("GET /%zz HTTP/1.1\r\n\r\n", 400, "percent-encoding"),
            ("GET /x HTTP/1.1\r\nX: a\u{01}b\r\n\r\n", 400, "control character"),
            ("POST /x HTTP/1.1\r\nExpect: teapot\r\n\r\n", 417, "Expect"),
          ])
    func malformed(text: String, status: Int, fragment: String) {
        let f = failure(text)
        #expect(f?.status == status, "\(text.debugDescription): \(String(describing: f))")
        #expect(f?.message.contains(fragment) == true, "\(String(describing: f))")
    }

    @Test("limits: an oversized head is 431, too many headers 431, an oversized body 413 before it is read")
    func limits() {
        let limits = HTTPRequestParser.Limits(maxHeadBytes: 1024, maxHeaderCount: 10, maxBodyBytes: 100)
        #expect(failure("GET /x HTTP/1.1\r\nX: " + String(repeating: "a", count: 2000), limits: limits)?.status == 431)
        #expect(failure("GET /x HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: 11) + "\r\n", limits: limits)?.status == 431)
        #expect(failure("POST /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n", limits: limits)?.status == 413)
    }

    @Test("HTTP/1.0 closes unless keep-alive is asked for; 1.1 keeps alive unless close")
    func keepAlive() {
        func request(_ text: String) -> HTTPRequest? {
            if case .request(let r) = parse(text).first { return r }
            return nil
        }
        #expect(request("GET / HTTP/1.0\r\n\r\n")?.keepAlive == false)
        #expect(request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?.keepAlive == true)
        #expect(request("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n")?.keepAlive == false)
    }

    @Test("the response parser reads Content-Length, chunked and close-delimited bodies and skips 100 Continue")
    func responses() throws {
        var parser = HTTPResponseParser()
        parser.append(Array("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.0 500 X\r\n\r\nrest".utf8))
        let a = try parser.next()
        let b = try parser.next()
        #expect(a?.status == 200 && a?.body == Array("ok".utf8))
        #expect(b?.status == 404 && b?.body == Array("abc".utf8))
        #expect(try parser.next() == nil)
        let c = try parser.next(atEOF: true)
        #expect(c?.status == 500 && c?.body == Array("rest".utf8))
    }

    @Test("responses carry Content-Length, and Connection: close when the connection ends")
    func serialize() {
        let text = String(decoding: HTTPResponse.error(404, "model 'x' not found").serialized(keepAlive: false), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(text.contains("Content-Length: 31\r\n") && text.contains("Connection: close\r\n"))
        #expect(text.hasSuffix("{\"error\":\"model 'x' not found\"}"))
        #expect(JSONText.quoted("a\"b\\\n\u{01}") == "\"a\\\"b\\\\\\n\\u0001\"")
    }
}
