/// Reads one HTTP/1.1 response with a `Content-Length` body out of the bytes received so far,
/// without building strings or dictionaries: the load generator must cost the server it
/// measures as little CPU as it can, since they share the machine's cores. It reads what a
/// closed-loop client needs (status, body length, `Connection: close`) and refuses what it does
/// not support (chunked or unbounded bodies) with an error, rather than guess.
struct ResponseReader {
    private(set) var bytes: [UInt8] = Array(repeating: 0, count: 1 << 16)
    private(set) var filled = 0
    private var scanned = 0
    private var headEnd = -1
    private(set) var status = 0
    private var total = -1
    private(set) var closes = false

    enum Outcome {
        case needMore, complete, malformed(String)
        var needsMore: Bool { if case .needMore = self { true } else { false } }
    }

    mutating func reset() {
        filled = 0; scanned = 0; headEnd = -1; status = 0; total = -1; closes = false
    }

    /// Room for the next `recv`, growing the buffer when it is full.
    mutating func withFreeSpace(_ body: (UnsafeMutableRawPointer, Int) -> Int) -> Int {
        if filled == bytes.count { bytes.append(contentsOf: repeatElement(0, count: bytes.count)) }
        let n = bytes.withUnsafeMutableBytes { body($0.baseAddress! + filled, $0.count - filled) }
        if n > 0 { filled += n }
        return n
    }

    /// The response's first bytes of body, for an error message.
    var bodyPrefix: String {
        guard headEnd >= 0 else { return String(decoding: bytes[0..<min(filled, 200)], as: UTF8.self) }
        return String(decoding: bytes[headEnd..<min(filled, headEnd + 200)], as: UTF8.self)
    }

    mutating func parse() -> Outcome {
        if headEnd < 0 {
            var i = max(scanned, 3)
            while i < filled {
                if bytes[i] == 10 && bytes[i - 1] == 13 && bytes[i - 2] == 10 && bytes[i - 3] == 13 { break }
                i += 1
            }
            guard i < filled else {
                scanned = filled
                return filled > 64 << 10 ? .malformed("response head over 64 KiB") : .needMore
            }
            headEnd = i + 1
            guard filled >= 12, bytes[0..<7].elementsEqual("HTTP/1.".utf8) else { return .malformed("malformed status line") }
            status = bytes[9..<12].reduce(0) { $0 * 10 + Int($1) - 48 }
            var length = -1
            var line = 0
            while let next = bytes[line..<headEnd].firstIndex(of: 10), next + 1 < headEnd {
                line = next + 1
                if let value = headerValue(from: line, named: "content-length") {
                    length = value.reduce(0) { $0 * 10 + Int($1) - 48 }
                    guard value.allSatisfy({ (48...57).contains($0) }), !value.isEmpty else { return .malformed("malformed Content-Length") }
                } else if let value = headerValue(from: line, named: "connection") {
                    closes = value.count == 5 && value.map({ $0 | 0x20 }).elementsEqual("close".utf8)
                } else if headerValue(from: line, named: "transfer-encoding") != nil {
                    return .malformed("chunked or encoded bodies are not supported by the load generator")
                }
            }
            guard length >= 0 else { return .malformed("response without Content-Length") }
            total = headEnd + length
        }
        if filled < total { return .needMore }
        return filled == total ? .complete : .malformed("bytes after the response")
    }

    /// The value of the header line at `start` when its name is `name` (lowercase), spaces trimmed.
    private func headerValue(from start: Int, named name: String) -> ArraySlice<UInt8>? {
        let name = name.utf8
        guard start + name.count < headEnd, bytes[start + name.count] == UInt8(ascii: ":") else { return nil }
        for (offset, expected) in name.enumerated() where bytes[start + offset] | 0x20 != expected { return nil }
        var from = start + name.count + 1
        var to = bytes[from..<headEnd].firstIndex(of: 13) ?? headEnd
        while from < to && bytes[from] == 32 { from += 1 }
        while to > from && bytes[to - 1] == 32 { to -= 1 }
        return bytes[from..<to]
    }
}
