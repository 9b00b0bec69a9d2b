/// An incremental HTTP/1.1 response parser, for clients (`registryctl`, tests).
///
/// Accepts `Content-Length` bodies, chunked bodies, and bodies delimited by the connection's
/// close; skips `1xx` interim responses. Bounded like the request parser.
public struct HTTPResponseParser: Sendable {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public let maxHeadBytes: Int
    public let maxBodyBytes: Int
    private var buffer: [UInt8] = []

    public init(maxHeadBytes: Int = 64 << 10, maxBodyBytes: Int = 1 << 30) {
        self.maxHeadBytes = maxHeadBytes
        self.maxBodyBytes = maxBodyBytes
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) { buffer.append(contentsOf: bytes) }
    public mutating func append(_ bytes: [UInt8]) { buffer.append(contentsOf: bytes) }

    /// A complete response, nil if more bytes are needed. With `atEOF`, a body without a length
    /// ends where the bytes end.
    public mutating func next(atEOF: Bool = false, requestMethod: String = "GET") throws(Failure) -> HTTPResponse? {
        while true {
            guard let end = headEnd() else {
                if buffer.count > maxHeadBytes { throw Failure(message: "response head exceeds \(maxHeadBytes) bytes") }
                if atEOF && !buffer.isEmpty { throw Failure(message: "connection closed in the middle of a response head") }
                return nil
            }
            let head = String(decoding: buffer[0..<end], as: UTF8.self)
            var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
            let statusLine = lines.removeFirst()
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100...599).contains(status) else {
                throw Failure(message: "malformed status line '\(statusLine.prefix(64))'")
            }
            var headers = HTTPHeaders()
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { throw Failure(message: "malformed header line '\(line.prefix(64))'") }
                headers.add(String(line[..<colon]), line[line.index(after: colon)...].trimmingSpaces)
            }
            let bodyStart = end + 4
            if (100..<200).contains(status) {
                buffer.removeFirst(bodyStart)
                continue
            }
            if requestMethod == "HEAD" || status == 204 || status == 304 {
                buffer.removeFirst(bodyStart)
                return HTTPResponse(status: status, headers: headers)
            }
            if headers["Transfer-Encoding"]?.lowercased().contains("chunked") == true {
                guard let (body, consumed) = try dechunk(from: bodyStart) else { return nil }
                buffer.removeFirst(consumed)
                return HTTPResponse(status: status, headers: headers, body: body)
            }
            if let lengthText = headers["Content-Length"] {
                guard let length = Int(lengthText), length >= 0, length <= maxBodyBytes else {
                    throw Failure(message: "invalid Content-Length '\(lengthText.prefix(32))'")
                }
                guard buffer.count - bodyStart >= length else {
                    if atEOF { throw Failure(message: "connection closed after \(buffer.count - bodyStart) of \(length) body bytes") }
                    return nil
                }
                let body = Array(buffer[bodyStart..<bodyStart + length])
                buffer.removeFirst(bodyStart + length)
                return HTTPResponse(status: status, headers: headers, body: body)
            }
            guard atEOF else { return nil }
            let body = Array(buffer[bodyStart...])
            buffer.removeAll()
            return HTTPResponse(status: status, headers: headers, body: body)
        }
    }

    private func headEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    private func dechunk(from start: Int) throws(Failure) -> ([UInt8], Int)? {
        var body: [UInt8] = []
        var i = start
        while true {
            guard let lineEnd = indexOfCRLF(from: i) else { return nil }
            let sizeText = String(decoding: buffer[i..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingSpaces, radix: 16), size >= 0 else { throw Failure(message: "malformed chunk size") }
            i = lineEnd + 2
            if size == 0 {
                // Skip trailers up to the empty line.
                while true {
                    guard let end = indexOfCRLF(from: i) else { return nil }
                    if end == i { return (body, end + 2) }
                    i = end + 2
                }
            }
            guard body.count + size <= maxBodyBytes else { throw Failure(message: "chunked body exceeds \(maxBodyBytes) bytes") }
            guard buffer.count >= i + size + 2 else { return nil }
            body.append(contentsOf: buffer[i..<i + size])
            i += size + 2
        }
    }

    private func indexOfCRLF(from start: Int) -> Int? {
        var i = start
        while i + 1 < buffer.count {
            if buffer[i] == 13 && buffer[i + 1] == 10 { return i }
            i += 1
        }
        return nil
    }
}
