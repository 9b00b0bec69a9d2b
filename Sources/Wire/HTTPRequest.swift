/// One HTTP/1.1 request, complete with its body.
public struct HTTPRequest: Sendable {
    /// The method, as sent (methods are case-sensitive: `GET`, not `get`).
    public var method: String
    /// The request target as sent (`/v2/models/digits/infer?x=1`).
    public var target: String
    /// The target's path, percent-decoded, without the query.
    public var path: String
    /// The query's parameters, percent-decoded, in order.
    public var query: [(name: String, value: String)]
    /// HTTP/1.0 or HTTP/1.1, as `(1, 0)` or `(1, 1)`.
    public var version: (major: Int, minor: Int)
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(method: String, target: String, version: (major: Int, minor: Int) = (1, 1), headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.method = method
        self.target = target
        let (path, query) = HTTPRequest.split(target: target)
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
    }

    /// Whether the connection stays open after the response: HTTP/1.1 unless `Connection: close`,
    /// HTTP/1.0 only with `Connection: keep-alive`.
    public var keepAlive: Bool {
        let tokens = headers.values("Connection").flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces.lowercased() }
        if version.minor >= 1 { return !tokens.contains("close") }
        return tokens.contains("keep-alive")
    }

    /// The first value of query parameter `name`.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }

    /// The path's segments (`/v1/models/digits` gives `["v1", "models", "digits"]`).
    public var pathSegments: [String] {
        path.utf8.split(separator: UInt8(ascii: "/")).map { String(Substring($0)) }
    }

    static func split(target: String) -> (String, [(name: String, value: String)]) {
        guard let mark = target.firstIndex(of: "?") else {
            return (percentDecoded(target) ?? target, [])
        }
        let path = percentDecoded(String(target[..<mark])) ?? String(target[..<mark])
        let query = target[target.index(after: mark)...].split(separator: "&").map { pair -> (name: String, value: String) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                let plus = String(s.map { $0 == "+" ? " " : $0 })
                return percentDecoded(plus) ?? plus
            }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
        return (path, query)
    }

    /// Decodes `%XX` escapes; nil if an escape is malformed or the result is not UTF-8.
    public static func percentDecoded(_ s: String) -> String? {
        guard s.utf8.contains(UInt8(ascii: "%")) else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        var bytes = s.utf8.makeIterator()
        while let byte = bytes.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = bytes.next().flatMap(hexValue), let low = bytes.next().flatMap(hexValue) else { return nil }
                out.append(high << 4 | low)
            } else {
                out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }
}

/// The value of one hexadecimal digit, or nil.
public func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

extension StringProtocol {
    /// The string without leading and trailing spaces and tabs (HTTP's optional whitespace).
    var trimmingSpaces: String {
        var s = Substring(self)
        while let first = s.first, first == " " || first == "\t" { s = s.dropFirst() }
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
