/// The header fields of an HTTP/1.1 message, in the order received.
///
/// Look-ups are case-insensitive (RFC 9110 §5.1). Values are stored as received, with
/// surrounding whitespace removed.
public struct HTTPHeaders: Sendable, Equatable, Sequence {
    public private(set) var fields: [(name: String, value: String)]

    public init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// The first value of `name`, or nil.
    public subscript(name: String) -> String? {
        for field in fields where HTTPHeaders.sameName(field.name, name) {
            return field.value
        }
        return nil
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { HTTPHeaders.sameName($0.name, name) }.map(\.value)
    }

    /// Whether two field names are equal ignoring ASCII case (names are tokens: ASCII only),
    /// without allocating: look-ups run several times per request on the serving path.
    @inline(__always)
    static func sameName(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                guard x.count == y.count else { return false }
                for i in 0..<x.count where x[i] != y[i] {
                    let p = x[i] | 0x20, q = y[i] | 0x20
                    guard p == q, p >= UInt8(ascii: "a"), p <= UInt8(ascii: "z") else { return false }
                }
                return true
            }
        }
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    /// Replaces every value of `name` with `value`.
    public mutating func set(_ name: String, _ value: String) {
        fields.removeAll { HTTPHeaders.sameName($0.name, name) }
        fields.append((name, value))
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }
}
