import Glibc

/// Numbers: one pass that validates a token against JSON's grammar and reads its decimal value,
/// then an exact conversion to the type asked for.
extension JSONScanner {
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

    /// Calls `body` with the token's bytes as a NUL-terminated C string (for strtod/strtof).
    func withToken<T>(_ token: (start: Int, end: Int, isInteger: Bool), _ body: (UnsafePointer<CChar>) -> T) -> T {
        let length = token.end - token.start
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buffer in
            for i in 0..<length { buffer[i] = CChar(bitPattern: bytes[token.start + i]) }
            buffer[length] = 0
            return body(buffer.baseAddress!)
        }
    }
}
