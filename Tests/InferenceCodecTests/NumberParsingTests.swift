import Foundation
import Glibc
import Testing
@testable import InferenceCodec

/// The JSON tensor decoder converts short decimals without strtod (Clinger's fast path). It
/// must give exactly what strtod and strtof give, bit for bit, for every number.
@Suite("JSON numbers")
struct NumberParsingTests {
    /// Parses `text` with the scanner as FP32 and FP64, and with the C library.
    static func both(_ text: String) throws -> (float: Float, strtof: Float, double: Double, strtod: Double) {
        var bytes = Array(text.utf8)
        return try bytes.withUnsafeMutableBytes { raw throws -> (Float, Float, Double, Double) in
            var a = JSONScanner(UnsafeRawBufferPointer(raw))
            var b = JSONScanner(UnsafeRawBufferPointer(raw))
            let f = try a.float(), d = try b.double()
            return (f, strtof(text, nil), d, strtod(text, nil))
        }
    }

    @Test("short decimals, integers, exponents, halfway cases and long forms: the same bits as strtof and strtod")
    func agreesWithStrtod() throws {
        var cases = ["0", "-0", "0.0", "-0.000", "1", "16", "0.5", "0.1", "0.3", "1e22", "1e23", "1e-22", "1e-23", "9007199254740993",
                     "9007199254740992", "123456789012345678", "1234567890123456789", "12345678901234567890", "3.4028234663852886e38",
                     "3.4028235677973366e38", "1.1754943508222875e-38", "1.401298464324817e-45", "0.000001", "16777217", "16777216",
                     "16777219", "33554435", "1.00000005960464477539", "1.0000000596046448", "0.30000001192092896", "2.5e-7", "7e+10",
                     "4.9406564584124654e-324", "1.7976931348623157e308", "-2.2250738585072014e-308", "100000000000000000000000"]
        // Floats' halfway points written exactly: these must not be rounded twice.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let f = Float(bitPattern: UInt32.random(in: 0x0080_0000...0x7F00_0000, using: &generator))
            let mid = (Double(f) + Double(f.nextUp)) / 2
            cases.append(String(format: "%.17g", mid))
            cases.append(String(format: "%.25g", mid))
            // 17 to 19 significant digits just either side of the halfway point: the Float path
            // for significands past 2^53 must see these as too close to call.
            for digits in 17...19 {
                cases.append(String(format: "%.\(digits - 1)e", mid.nextUp.nextUp))
                cases.append(String(format: "%.\(digits - 1)e", mid.nextDown.nextDown))
                cases.append(String(format: "%.\(digits)g", mid))
            }
        }
        // What Python's json.dumps writes for 8-bit pixels scaled to [0, 1] (k/255): 15 to 17
        // digits, a third of them past 2^53.
        for k in 0...255 { cases.append("\(Double(k) / 255)") }
        // 18 and 19 significant digits, and 20 or more (past what the fast path reads).
        for _ in 0..<50_000 {
            let digits = Int.random(in: 18...24, using: &generator)
            var text = String(Int.random(in: 1...9, using: &generator))
            text += (1..<digits).map { _ in String(Int.random(in: 0...9, using: &generator)) }.joined()
            let point = Int.random(in: 0...digits, using: &generator)
            text = point == 0 ? "0." + text : point == digits ? text : String(text.prefix(point)) + "." + String(text.dropFirst(point))
            if Bool.random(using: &generator) { text += "e\(Int.random(in: -25...25, using: &generator))" }
            cases.append(text)
        }
        // Random decimals of 1 to 20 digits, with and without a point and an exponent.
        for _ in 0..<200_000 {
            let digits = Int.random(in: 1...20, using: &generator)
            var text = (0..<digits).map { _ in String(Int.random(in: 0...9, using: &generator)) }.joined()
            while text.count > 1 && text.first == "0" { text.removeFirst() }
            if Bool.random(using: &generator) { text = "0." + text } else if text.count > 1 && Bool.random(using: &generator) {
                let point = Int.random(in: 1..<text.count, using: &generator)
                text.insert(".", at: text.index(text.startIndex, offsetBy: point))
            }
            if Int.random(in: 0..<4, using: &generator) == 0 { text += "e\(Int.random(in: -30...30, using: &generator))" }
            if Bool.random(using: &generator) { text = "-" + text }
            cases.append(text)
        }
        // What real tensors carry: floats printed shortest (Swift) and with %g.
        for _ in 0..<50_000 {
            let x = Float.random(in: -1000...1000, using: &generator)
            cases.append("\(x)")
            cases.append(String(format: "%.9g", Double(x)))
            cases.append("\(Double.random(in: 0...1, using: &generator))")
        }
        var mismatches: [String] = []
        for text in cases {
            let r: (float: Float, strtof: Float, double: Double, strtod: Double)
            do { r = try NumberParsingTests.both(text) } catch {
                // Out of FP32 range: refused, as strtof would give infinity.
                if !strtof(text, nil).isFinite { continue }
                mismatches.append("\(text): refused (\(error))")
                continue
            }
            if r.float.bitPattern != r.strtof.bitPattern { mismatches.append("\(text): FP32 \(r.float) vs strtof \(r.strtof)") }
            if r.double.bitPattern != r.strtod.bitPattern { mismatches.append("\(text): FP64 \(r.double) vs strtod \(r.strtod)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(cases.count): \(mismatches.prefix(10))")
        #expect(cases.count > 400_000)
    }
}
