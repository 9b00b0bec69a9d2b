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

    /// A number token, validated against JSON's grammar, with its decimal value read in the same
    /// pass: up to 19 significant digits and a power of ten (`exact` is false when more
    /// significant digits, or an exponent beyond ±100,000, were given; the token's bytes then
    /// go to strtod/strtof).
    struct Number {
        var start: Int
        var end: Int
        var isInteger: Bool
        var significand: UInt64
        var exponent: Int
        var negative: Bool
        var exact: Bool
    }

    @inline(__always)
    mutating func number() throws(Failure) -> Number {
        skipWhitespace()
        let start = position
        var integer = true
        var negative = false
        var significand: UInt64 = 0
        var digits = 0
        var exponent = 0
        var exact = true
        if position < end && bytes[position] == UInt8(ascii: "-") { negative = true; position += 1 }
        guard position < end, isDigit(bytes[position]) else { throw failure("expected a number") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            repeat {
                let d = bytes[position] &- 0x30
                if digits < 19 {
                    significand = significand &* 10 &+ UInt64(d)
                    digits += 1
                } else {
                    exponent += 1
                    if d != 0 { exact = false }
                }
                position += 1
            } while position < end && isDigit(bytes[position])
        }
        if position < end && bytes[position] == UInt8(ascii: ".") {
            integer = false
            position += 1
            guard position < end, isDigit(bytes[position]) else { throw failure("expected digits after '.'") }
            repeat {
                let d = bytes[position] &- 0x30
                if significand == 0 && d == 0 {
                    exponent -= 1
                } else if digits < 19 {
                    significand = significand &* 10 &+ UInt64(d)
                    digits += 1
                    exponent -= 1
                } else if d != 0 {
                    exact = false
                }
                position += 1
            } while position < end && isDigit(bytes[position])
        }
        if position < end && (bytes[position] | 0x20) == UInt8(ascii: "e") {
            integer = false
            position += 1
            var sign = 1
            if position < end && bytes[position] == UInt8(ascii: "+") {
                position += 1
            } else if position < end && bytes[position] == UInt8(ascii: "-") {
                sign = -1
                position += 1
            }
            guard position < end, isDigit(bytes[position]) else { throw failure("expected digits in an exponent") }
            var e = 0
            repeat {
                if e < 100_000 { e = e &* 10 &+ Int(bytes[position] &- 0x30) } else { exact = false }
                position += 1
            } while position < end && isDigit(bytes[position])
            exponent += sign * e
        }
        guard position - start <= 400 else { throw failure("number too long") }
        return Number(start: start, end: position, isInteger: integer, significand: significand, exponent: exponent,
                      negative: negative, exact: exact)
    }

    /// The bytes of a number token, validated against JSON's grammar.
    mutating func numberToken() throws(Failure) -> (start: Int, end: Int, isInteger: Bool) {
        let n = try number()
        return (n.start, n.end, n.isInteger)
    }

    @inline(__always)
    private func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

    /// A number as a Double (correctly rounded: exactly, or by strtod on the validated token).
    /// A number beyond the type's range is refused, never turned into infinity.
    @inline(__always)
    mutating func double() throws(Failure) -> Double {
        let n = try number()
        let value = JSONScanner.fastDouble(n) ?? withToken(n) { strtod($0, nil) }
        guard value.isFinite else { throw failure("number out of range for FP64 (largest magnitude 1.8e308)") }
        return value
    }

    /// A number as a Float, rounded once (exactly, or by strtof), never through a Double that
    /// could round it twice.
    @inline(__always)
    mutating func float() throws(Failure) -> Float {
        let n = try number()
        let value = JSONScanner.fastFloat(n) ?? withToken(n) { strtof($0, nil) }
        guard value.isFinite else { throw failure("number out of range for FP32 (largest magnitude 3.4e38)") }
        return value
    }

    /// An integer within `Int64`; fractions and exponents are refused.
    mutating func int64() throws(Failure) -> Int64 {
        let token = try numberToken()
        guard token.isInteger else { throw failure("expected an integer") }
        var i = token.start
        let negative = bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        var magnitude: UInt64 = 0
        while i < token.end {
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(bytes[i] - 0x30))
            guard !o1 && !o2 else { throw failure("integer out of range") }
            magnitude = s
            i += 1
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw failure("integer out of range") }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw failure("integer out of range") }
        return Int64(magnitude)
    }

    /// A non-negative integer within `UInt64`.
    mutating func uint64() throws(Failure) -> UInt64 {
        let token = try numberToken()
        guard token.isInteger, bytes[token.start] != UInt8(ascii: "-") else { throw failure("expected a non-negative integer") }
        var magnitude: UInt64 = 0
        for i in token.start..<token.end {
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(bytes[i] - 0x30))
            guard !o1 && !o2 else { throw failure("integer out of range") }
            magnitude = s
        }
        return magnitude
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

    // MARK: Fast, exact number conversion
    //
    // Most numbers in a tensor are decimals of up to 17 digits ("0.5", "17", "0.5019607843137255").
    // Clinger's fast path converts them exactly without strtod: when the decimal significand fits
    // the binary one (2^53 for Double) and the power of ten is itself exact (10^22 at most), one
    // multiplication or division, correctly rounded by the FPU, gives the correctly rounded
    // result. For a Float, a significand of up to 19 digits also works: the Double computed from
    // it is within 2 of its units in the last place of the true value, so when it lies more than
    // 3 units from a point halfway between two Floats (all but about one number in 10^8), the
    // true value rounds to the same Float, rounding being monotone. Anything else goes to
    // strtod/strtof. A test compares both paths bit for bit.

    private static let exactPowersOfTen: [Double] = (0...22).map { (0..<$0).reduce(1.0) { value, _ in value * 10 } }

    /// The correctly rounded Double, when the fast path applies.
    @inline(__always)
    static func fastDouble(_ n: Number) -> Double? {
        guard n.exact, n.significand <= 1 << 53 else { return nil }
        guard let value = scaled(n) else { return nil }
        return n.negative ? -value : value
    }

    /// `significand × 10^exponent` in Double arithmetic, when the power of ten is exact.
    @inline(__always)
    private static func scaled(_ n: Number) -> Double? {
        var value = Double(n.significand)
        if n.significand == 0 {
            // 0, 0.000, 0e5: zero whatever the exponent.
        } else if n.exponent >= 0 && n.exponent <= 22 {
            value *= exactPowersOfTen[n.exponent]
        } else if n.exponent < 0 && n.exponent >= -22 {
            value /= exactPowersOfTen[-n.exponent]
        } else {
            return nil
        }
        return value
    }

    /// The correctly rounded Float, when the fast path applies (see above), or nil; outside the
    /// normal Float range, nil.
    @inline(__always)
    static func fastFloat(_ n: Number) -> Float? {
        guard n.exact, let d = scaled(n) else { return nil }
        if d == 0 { return n.negative ? -0.0 : 0.0 }
        guard d >= Double(Float.leastNormalMagnitude), d <= Double(Float.greatestFiniteMagnitude) else { return nil }
        // Rounding a normal Double to a Float looks only at its 29 low significand bits: the
        // boundaries lie where they read 2^28 (halfway). How far d is from one, in Double units:
        let low = d.bitPattern & 0x1FFF_FFFF
        let distance = low > 1 << 28 ? low - 1 << 28 : 1 << 28 - low
        // An exact d is ambiguous only exactly halfway; an approximate one within 3 units.
        guard distance > (n.significand <= 1 << 53 ? 0 : 3) else { return nil }
        let f = Float(d)
        return n.negative ? -f : f
    }

    private func withToken<T>(_ n: Number, _ body: (UnsafePointer<CChar>) -> T) -> T {
        withToken((n.start, n.end, n.isInteger), body)
    }

    private func withToken<T>(_ token: (start: Int, end: Int, isInteger: Bool), _ body: (UnsafePointer<CChar>) -> T) -> T {
        let length = token.end - token.start
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buffer in
            for i in 0..<length { buffer[i] = CChar(bitPattern: bytes[token.start + i]) }
            buffer[length] = 0
            return body(buffer.baseAddress!)
        }
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

/// A parsed JSON value (used for small things such as `parameters`, never for tensor data).
enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double, integer: Bool)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    static func == (a: JSONValue, b: JSONValue) -> Bool {
        a.text == b.text
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    /// Compact JSON text.
    var text: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let d, let integer): integer && abs(d) < 9e15 ? String(Int64(d)) : (d.isFinite ? "\(d)" : "null")
        case .string(let s): JSONText.quoted(s)
        case .array(let elements): "[" + elements.map(\.text).joined(separator: ",") + "]"
        case .object(let members): "{" + members.map { JSONText.quoted($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }
}
