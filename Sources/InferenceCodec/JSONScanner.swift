import Glibc
import Wire

/// A bounded JSON scanner over bytes, for the inference hot path: it reads values without
/// building a generic tree, so tensor data goes from the request body straight into a tensor's
/// buffer. Strict RFC 8259 grammar; nesting depth limited; every error names its byte offset.
///
/// A value type over borrowed bytes: use it within the `withUnsafeBytes` of the body.
struct JSONScanner {
    struct Failure: Error, Equatable {
        var message: String
    }

    let bytes: UnsafeRawBufferPointer
    var position: Int
    let end: Int
    static let maximumDepth = 64

    init(_ bytes: UnsafeRawBufferPointer, from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.position = start
        self.end = end ?? bytes.count
    }

    func failure(_ message: String) -> Failure {
        Failure(message: "\(message) at byte \(position)")
    }

    var atEnd: Bool { position >= end }

    @inline(__always)
    mutating func skipWhitespace() {
        while position < end {
            let b = bytes[position]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { position += 1 } else { return }
        }
    }

    @inline(__always)
    mutating func peek() -> UInt8? {
        skipWhitespace()
        return position < end ? bytes[position] : nil
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(Failure) {
        guard peek() == byte else { throw failure("expected \(what)") }
        position += 1
    }

    /// Consumes `byte` if it comes next.
    mutating func consume(_ byte: UInt8) -> Bool {
        if peek() == byte {
            position += 1
            return true
        }
        return false
    }

    /// Iterates an object's members: `body` is called with each key, positioned at its value,
    /// and must consume the value.
    mutating func object(_ body: (inout JSONScanner, String) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "{"), "'{'")
        if consume(UInt8(ascii: "}")) { return }
        while true {
            guard peek() == UInt8(ascii: "\"") else { throw failure("expected a string key") }
            let key = try string()
            try expect(UInt8(ascii: ":"), "':'")
            try body(&self, key)
            if consume(UInt8(ascii: ",")) { continue }
            try expect(UInt8(ascii: "}"), "',' or '}'")
            return
        }
    }

    /// Iterates an array's elements: `body` must consume each.
    mutating func array(_ body: (inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "["), "'['")
        if consume(UInt8(ascii: "]")) { return }
        while true {
            try body(&self)
            if consume(UInt8(ascii: ",")) { continue }
            try expect(UInt8(ascii: "]"), "',' or ']'")
            return
        }
    }

    /// A string's bytes (escapes decoded, UTF-8), without validating the UTF-8 (tensor BYTES may
    /// hold any bytes).
    mutating func stringBytes() throws(Failure) -> [UInt8] {
        try expect(UInt8(ascii: "\""), "a string")
        var out: [UInt8] = []
        var runStart = position
        while position < end {
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<position]))
                position += 1
                return out
            }
            if b < 0x20 { throw failure("control character in a string") }
            if b == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<position]))
                position += 1
                guard position < end else { break }
                let e = bytes[position]
                position += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard position + 1 < end, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                            throw failure("unpaired surrogate in a string")
                        }
                        position += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw failure("unpaired surrogate in a string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw failure("unpaired surrogate in a string")
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                default:
                    throw failure("invalid escape in a string")
                }
                runStart = position
                continue
            }
            position += 1
        }
        throw failure("unterminated string")
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard position + 4 <= end else { throw failure("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = hexValue(bytes[position]) else { throw failure("invalid \\u escape") }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// A string that must be valid UTF-8.
    mutating func string() throws(Failure) -> String {
        let raw = try stringBytes()
        guard let text = String(validating: raw, as: UTF8.self) else { throw failure("string is not valid UTF-8") }
        return text
    }

    mutating func bool() throws(Failure) -> Bool {
        skipWhitespace()
        if matches("true") { return true }
        if matches("false") { return false }
        throw failure("expected true or false")
    }

    private mutating func matches(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard position + count <= end else { return false }
        for i in 0..<count where bytes[position + i] != literal.utf8Start[i] { return false }
        position += count
        return true
    }

    /// Skips an array or object by its structure alone (brackets, and strings with their
    /// escapes), without checking what lies between; any other value by `skipValue`. For a value
    /// that a second pass parses strictly (tensor data), so that it is read once, not twice.
    /// Returns its byte range. Needs no recursion, so depth is not limited here (the strict
    /// pass limits it).
    mutating func skipStructure() throws(Failure) -> Range<Int> {
        guard let first = peek() else { throw failure("expected a value") }
        guard first == UInt8(ascii: "[") || first == UInt8(ascii: "{") else { return try skipValue() }
        let start = position
        var depth = 0
        while position < end {
            switch bytes[position] {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 {
                    position += 1
                    return start..<position
                }
            case UInt8(ascii: "\""):
                position += 1
                while position < end && bytes[position] != UInt8(ascii: "\"") {
                    position += bytes[position] == UInt8(ascii: "\\") ? 2 : 1
                }
                guard position < end else { throw failure("unterminated string") }
            default:
                break
            }
            position += 1
        }
        position = start
        throw failure(first == UInt8(ascii: "[") ? "unterminated array" : "unterminated object")
    }

    /// Skips any value, with a depth limit; returns its byte range.
    @discardableResult
    mutating func skipValue(depth: Int = 0) throws(Failure) -> Range<Int> {
        guard depth < JSONScanner.maximumDepth else { throw failure("nesting deeper than \(JSONScanner.maximumDepth)") }
        guard let next = peek() else { throw failure("expected a value") }
        let start = position
        switch next {
        case UInt8(ascii: "{"):
            try object { (scanner: inout JSONScanner, _: String) throws(Failure) in try scanner.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            try array { (scanner: inout JSONScanner) throws(Failure) in try scanner.skipValue(depth: depth + 1) }
        case UInt8(ascii: "\""):
            _ = try stringBytes()
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            _ = try bool()
        case UInt8(ascii: "n"):
            guard matches("null") else { throw failure("expected a value") }
        default:
            _ = try numberToken()
        }
        return start..<position
    }

    /// A small JSON value, for `parameters`.
    mutating func value(depth: Int = 0) throws(Failure) -> JSONValue {
        guard depth < JSONScanner.maximumDepth else { throw failure("nesting deeper than \(JSONScanner.maximumDepth)") }
        guard let next = peek() else { throw failure("expected a value") }
        switch next {
        case UInt8(ascii: "{"):
            var members: [(String, JSONValue)] = []
            try object { (scanner: inout JSONScanner, key: String) throws(Failure) in members.append((key, try scanner.value(depth: depth + 1))) }
            return .object(members)
        case UInt8(ascii: "["):
            var elements: [JSONValue] = []
            try array { (scanner: inout JSONScanner) throws(Failure) in elements.append(try scanner.value(depth: depth + 1)) }
            return .array(elements)
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            return .bool(try bool())
        case UInt8(ascii: "n"):
            guard matches("null") else { throw failure("expected a value") }
            return .null
        default:
            let token = try numberToken()
            return .number(withToken(token) { strtod($0, nil) }, integer: token.isInteger)
        }
    }
}
