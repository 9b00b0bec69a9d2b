/// An incremental, bounded HTTP/1.1 request parser (RFC 9112), for a server.
///
/// Feed it bytes as they arrive with ``append(_:)``; ``next()`` returns a complete request,
/// says it needs more, asks for a `100 Continue`, or reports why the input is refused with the
/// status to answer. It never holds more than the head limit plus one body, so a client cannot
/// make the server buffer without bound. Pipelined requests are returned one after another.
///
/// Refused on purpose: `Transfer-Encoding` (chunked request bodies; answered 501, send
/// `Content-Length`), obsolete line folding, bare LF line ends, conflicting `Content-Length`s,
/// control characters in the head.
///
/// A value type with no shared state: one per connection, used by one thread at a time.
public struct HTTPRequestParser: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Request line plus header fields, including their line ends.
        public var maxHeadBytes: Int
        public var maxHeaderCount: Int
        public var maxBodyBytes: Int

        public init(maxHeadBytes: Int = 16 << 10, maxHeaderCount: Int = 100, maxBodyBytes: Int = 64 << 20) {
            self.maxHeadBytes = maxHeadBytes
            self.maxHeaderCount = maxHeaderCount
            self.maxBodyBytes = maxBodyBytes
        }
    }

    /// Why a request is refused, with the status to answer before closing the connection.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var status: Int
        public var message: String
        public var description: String { "\(status): \(message)" }
    }

    public enum Outcome: Sendable {
        /// More bytes are needed.
        case needMore
        /// The head is complete and says `Expect: 100-continue`: answer `100 Continue`, then
        /// keep feeding. Returned at most once per request.
        case continueExpected
        case request(HTTPRequest)
        /// The input is refused; answer `failure.status` and close.
        case failure(Failure)
    }

    private struct Head {
        var request: HTTPRequest
        var bodyLength: Int
        var expectsContinue: Bool
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    /// Where the search for the end of the head resumes.
    private var scanned = 0
    private var head: Head?
    private var continueSent = false
    private var failed: Failure?

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Bytes buffered and not yet returned as a request.
    public var bufferedCount: Int { buffer.count }
    /// Whether part of a request has arrived (used to tell an idle connection from a slow one).
    public var isMidRequest: Bool { !buffer.isEmpty || head != nil }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
    }

    public mutating func next() -> Outcome {
        if let failed { return .failure(failed) }
        if head == nil {
            switch findHeadEnd() {
            case .none:
                return .needMore
            case .some(.failure(let failure)):
                failed = failure
                return .failure(failure)
            case .some(.success(let end)):
                switch buffer.withUnsafeBufferPointer({ parseHead(UnsafeBufferPointer(rebasing: $0[0..<end])) }) {
                case .failure(let failure):
                    failed = failure
                    return .failure(failure)
                case .success(let parsed):
                    head = parsed
                    buffer.removeFirst(end + 4)
                    scanned = 0
                    continueSent = false
                }
            }
        }
        guard let current = head else { return .needMore }
        if buffer.count < current.bodyLength {
            if current.expectsContinue && !continueSent && buffer.isEmpty {
                continueSent = true
                return .continueExpected
            }
            return .needMore
        }
        var request = current.request
        request.body = Array(buffer[0..<current.bodyLength])
        buffer.removeFirst(current.bodyLength)
        head = nil
        return .request(request)
    }

    private func fail(_ status: Int, _ message: String) -> Failure {
        Failure(status: status, message: message)
    }

    /// The offset of the CRLFCRLF that ends the head, nil if not there yet.
    private mutating func findHeadEnd() -> Result<Int, Failure>? {
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        // Empty lines before a request line are to be ignored (RFC 9112 §2.2).
        while buffer.count >= 2, buffer[0] == cr, buffer[1] == lf { buffer.removeFirst(2) }
        var i = scanned
        let end = buffer.count
        while i < end {
            let byte = buffer[i]
            if byte == lf {
                if i == 0 || buffer[i - 1] != cr { return .failure(fail(400, "bare LF in the request head: lines must end with CRLF")) }
                if i >= 3, buffer[i - 2] == lf, buffer[i - 3] == cr { return .success(i - 3) }
            }
            i += 1
            if i > limits.maxHeadBytes {
                return .failure(fail(431, "request head exceeds \(limits.maxHeadBytes) bytes"))
            }
        }
        // Leave the last three bytes to be rescanned with what comes next.
        scanned = max(0, end - 3)
        return nil
    }

    /// Parses the head (request line and header fields, without the final CRLFCRLF) in place,
    /// byte by byte: Strings are made only for what the request keeps (method, target, header
    /// names and values).
    private func parseHead(_ p: UnsafeBufferPointer<UInt8>) -> Result<Head, Failure> {
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
        let count = p.count
        /// Where the line starting at `start` ends (at its CR, or at the end of the head).
        func lineEnd(from start: Int) -> Int {
            var i = start
            while i + 1 < count {
                if p[i] == cr && p[i + 1] == lf { return i }
                i += 1
            }
            return count
        }
        func text(_ range: Range<Int>) -> String {
            String(decoding: UnsafeBufferPointer(rebasing: p[range]), as: UTF8.self)
        }

        // The request line: METHOD SP target SP version, exactly two spaces.
        let requestEnd = lineEnd(from: 0)
        var spaces: (Int, Int) = (-1, -1)
        var spaceCount = 0
        for i in 0..<requestEnd where p[i] == space {
            if spaceCount == 0 { spaces.0 = i } else if spaceCount == 1 { spaces.1 = i }
            spaceCount += 1
        }
        guard spaceCount == 2 else {
            return .failure(fail(400, "malformed request line: expected 'METHOD /target HTTP/1.1'"))
        }
        let method = 0..<spaces.0, target = spaces.0 + 1..<spaces.1, versionBytes = spaces.1 + 1..<requestEnd
        guard !method.isEmpty, method.allSatisfy({ HTTPRequestParser.isTokenByte(p[$0]) }) else {
            return .failure(fail(400, "malformed request line: invalid method"))
        }
        // Visible ASCII only, so the target is valid UTF-8 as it stands.
        guard !target.isEmpty, target.allSatisfy({ p[$0] > 0x20 && p[$0] < 0x7F }),
              p[target.lowerBound] == UInt8(ascii: "/") || (target.count == 1 && p[target.lowerBound] == UInt8(ascii: "*")) else {
            return .failure(fail(400, "malformed request line: the target must be a path starting with '/'"))
        }
        let version: (major: Int, minor: Int)
        let version11: StaticString = "HTTP/1.1"
        if versionBytes.count == 8 && (0..<7).allSatisfy({ p[versionBytes.lowerBound + $0] == version11.utf8Start[$0] })
            && (p[versionBytes.lowerBound + 7] == UInt8(ascii: "1") || p[versionBytes.lowerBound + 7] == UInt8(ascii: "0")) {
            version = (1, p[versionBytes.lowerBound + 7] == UInt8(ascii: "1") ? 1 : 0)
        } else {
            let versionText = text(versionBytes)
            if versionText.hasPrefix("HTTP/") { return .failure(fail(505, "HTTP version '\(versionText.prefix(16))' is not supported; use HTTP/1.1")) }
            return .failure(fail(400, "malformed request line: expected 'HTTP/1.1' at its end"))
        }
        let targetText = text(target)
        let pathEnd = target.first(where: { p[$0] == UInt8(ascii: "?") }) ?? target.upperBound
        if (target.lowerBound..<pathEnd).contains(where: { p[$0] == UInt8(ascii: "%") }),
           HTTPRequest.percentDecoded(text(target.lowerBound..<pathEnd)) == nil {
            return .failure(fail(400, "malformed percent-encoding in the request path"))
        }

        // Header fields, one a line.
        var headers = HTTPHeaders()
        var contentLength: Int?
        var contentLengthCount = 0
        var lineStart = requestEnd + 2
        while lineStart <= count {
            let end = lineEnd(from: lineStart)
            defer { lineStart = end + 2 }
            if headers.fields.count >= limits.maxHeaderCount {
                return .failure(fail(431, "more than \(limits.maxHeaderCount) header fields"))
            }
            guard end > lineStart else { return .failure(fail(400, "empty header line")) }
            if p[lineStart] == space || p[lineStart] == tab {
                return .failure(fail(400, "obsolete header line folding is not accepted"))
            }
            guard let colon = (lineStart..<end).first(where: { p[$0] == UInt8(ascii: ":") }) else {
                return .failure(fail(400, "malformed header line: no ':'"))
            }
            let name = lineStart..<colon
            guard !name.isEmpty, name.allSatisfy({ HTTPRequestParser.isTokenByte(p[$0]) }) else {
                return .failure(fail(400, "malformed header name"))
            }
            var valueStart = colon + 1, valueEnd = end
            guard (valueStart..<valueEnd).allSatisfy({ p[$0] == 0x09 || (p[$0] >= 0x20 && p[$0] != 0x7F) }) else {
                return .failure(fail(400, "control character in header '\(text(name))'"))
            }
            while valueStart < valueEnd && (p[valueStart] == space || p[valueStart] == tab) { valueStart += 1 }
            while valueEnd > valueStart && (p[valueEnd - 1] == space || p[valueEnd - 1] == tab) { valueEnd -= 1 }
            let nameText = text(name), valueText = text(valueStart..<valueEnd)
            headers.add(nameText, valueText)
            if HTTPHeaders.sameName(nameText, "Content-Length") {
                contentLengthCount += 1
                // One plain decimal (the usual case) is read here; lists go the long way below.
                if contentLengthCount == 1, (1...18).contains(valueEnd - valueStart),
                   (valueStart..<valueEnd).allSatisfy({ p[$0] &- 0x30 < 10 }) {
                    contentLength = (valueStart..<valueEnd).reduce(0) { $0 * 10 + Int(p[$1] &- 0x30) }
                } else {
                    contentLength = nil
                }
            }
        }
        if headers["Transfer-Encoding"] != nil {
            return .failure(fail(501, "Transfer-Encoding (chunked request bodies) is not supported: send the body with Content-Length"))
        }
        var bodyLength = 0
        if contentLengthCount == 1, let contentLength {
            bodyLength = contentLength
        } else if contentLengthCount > 0 {
            let lengths = headers.values("Content-Length").flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces }
            if let firstLength = lengths.first {
                guard lengths.allSatisfy({ $0 == firstLength }) else {
                    return .failure(fail(400, "conflicting Content-Length values"))
                }
                guard !firstLength.isEmpty, firstLength.utf8.count <= 18, firstLength.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                      let length = Int(firstLength) else {
                    return .failure(fail(400, "invalid Content-Length '\(firstLength.prefix(32))'"))
                }
                bodyLength = length
            }
        }
        guard bodyLength <= limits.maxBodyBytes else {
            return .failure(fail(413, "request body of \(bodyLength) bytes exceeds the limit of \(limits.maxBodyBytes) bytes"))
        }
        let expect = headers["Expect"]?.lowercased()
        if let expect, expect != "100-continue" {
            return .failure(fail(417, "unsupported Expect '\(expect.prefix(32))'"))
        }
        let request = HTTPRequest(method: text(method), target: targetText, version: version, headers: headers)
        return .success(Head(request: request, bodyLength: bodyLength, expectsContinue: expect != nil && bodyLength > 0))
    }

    /// RFC 9110 `tchar`.
    @inline(__always)
    static func isTokenByte(_ b: UInt8) -> Bool {
        tokenBytes[Int(b)]
    }

    private static let tokenBytes: [Bool] = (0...255).map { value in
        let b = UInt8(value)
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }
}
