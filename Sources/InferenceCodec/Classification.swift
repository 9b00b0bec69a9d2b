import Glibc
import Tensors

/// Triton's classification extension: an output's scores turned into its top classes, as text.
///
/// What a client asking for `classification: k` on a score output of shape [N, C] receives: a
/// BYTES tensor [N, min(k, C)] (or [min(k, C)] for an output of shape [C]) whose elements read
/// `"<score>:<index>"`, or `"<score>:<index>:<label>"` when the class has a name, highest score
/// first. Written to be byte-for-byte what Triton's HTTP frontend writes
/// (`src/classification.cc`, `TopkClassifications`):
///
/// - A row is everything after the first dimension (an output of rank 3 [N, A, B] ranks A×B
///   classes per row, indexed row-major), as Triton strides through a batch-1 element count.
///   An output of rank 0 or 1 is one row.
/// - The score is written as C++'s `std::to_string` writes it: floating-point scores with
///   printf's `%f` (six decimals, the value widened to double first), integer scores as
///   integers. The index is decimal.
/// - A label is appended only when the class has a non-empty name: a missing or short list
///   gives `"<score>:<index>"` for the classes it does not name, as Triton's label provider does.
/// - Ties: Triton sorts with `std::sort` and `>`, which leaves the order of equal scores
///   unspecified (libstdc++ keeps index order for rows of up to 16 classes). Here equal scores
///   keep index order always, so that the answer is one function of the scores. NaN ranks below
///   every number (Triton's comparison leaves it undefined) and is written as printf writes it.
///
/// Triton refuses FP16, BF16, BOOL and BYTES outputs; FP16 and BF16 are accepted here (their
/// scores widened to float, as an FP32 output's are), BOOL and BYTES are not scores.
public enum Classification {
    /// Whether outputs of `type` hold scores that can be ranked.
    public static func supports(_ type: ElementType) -> Bool {
        switch type {
        case .bool, .string: false
        default: true
        }
    }

    /// The top `count` classes of each row of `scores`, as Triton writes them; `labels[i]` names
    /// class `i`. Nil for a tensor whose elements are not scores (see ``supports(_:)``).
    public static func top(_ count: Int, of scores: Tensor, labels: [String] = []) -> Tensor? {
        precondition(count > 0, "a classification asks for at least one class")
        do {
            switch scores.elementType {
            case .float: return try rank(scores, count, labels, try scores.scalars(as: Float.self), Classification.float)
            case .double: return try rank(scores, count, labels, try scores.scalars(as: Double.self), Classification.double)
            case .float16: return try rank(scores, count, labels, try scores.scalars(as: Float16.self).map(Float.init), Classification.float)
            case .bfloat16: return try rank(scores, count, labels, try scores.scalars(as: BFloat16.self).map(\.floatValue), Classification.float)
            case .int8: return try rank(scores, count, labels, try scores.scalars(as: Int8.self), \.description)
            case .int16: return try rank(scores, count, labels, try scores.scalars(as: Int16.self), \.description)
            case .int32: return try rank(scores, count, labels, try scores.scalars(as: Int32.self), \.description)
            case .int64: return try rank(scores, count, labels, try scores.scalars(as: Int64.self), \.description)
            case .uint8: return try rank(scores, count, labels, try scores.scalars(as: UInt8.self), \.description)
            case .uint16: return try rank(scores, count, labels, try scores.scalars(as: UInt16.self), \.description)
            case .uint32: return try rank(scores, count, labels, try scores.scalars(as: UInt32.self), \.description)
            case .uint64: return try rank(scores, count, labels, try scores.scalars(as: UInt64.self), \.description)
            case .bool, .string: return nil
            }
        } catch {
            // The element type was matched above and the shape is the input's own: a tensor
            // that cannot be read as itself, or a result that cannot be built, is a bug.
            preconditionFailure("classification of a \(scores.elementType) tensor \(scores.shape) failed: \(error)")
        }
    }

    /// The shape of the answer for scores of `shape`: [rows, kept] or [kept].
    public static func shape(for shape: [Int], count: Int) -> [Int] {
        let (rows, classes) = layout(shape)
        let kept = min(count, classes)
        return shape.count >= 2 ? [rows, kept] : [kept]
    }

    /// Rows and classes per row of scores of `shape`.
    private static func layout(_ shape: [Int]) -> (rows: Int, classes: Int) {
        shape.count >= 2 ? (shape[0], shape.dropFirst().reduce(1, *)) : (1, shape.first ?? 1)
    }

    private static func rank<T: Comparable>(_ scores: Tensor, _ count: Int, _ labels: [String], _ values: [T],
                                            _ format: (T) -> String) throws(RuntimeError) -> Tensor {
        let (rows, classes) = layout(scores.shape)
        let kept = min(count, classes)
        var strings: [[UInt8]] = []
        strings.reserveCapacity(rows * kept)
        var order = Array(0..<classes)
        for row in 0..<rows {
            let base = row * classes
            for i in 0..<classes { order[i] = i }
            order.sort { a, b in ranksAbove(values[base + a], a, values[base + b], b) }
            for index in order.prefix(kept) {
                var text = format(values[base + index]) + ":" + String(index)
                if index < labels.count, !labels[index].isEmpty { text += ":" + labels[index] }
                strings.append(Array(text.utf8))
            }
        }
        return try Tensor(shape: shape(for: scores.shape, count: count), byteStrings: strings)
    }

    /// The order of two classes: the higher score first, equal scores by index; NaN (only
    /// floating-point scores have one, and it equals nothing, itself included) after numbers.
    @inline(__always)
    private static func ranksAbove<T: Comparable>(_ a: T, _ ia: Int, _ b: T, _ ib: Int) -> Bool {
        let aIsNaN = a != a, bIsNaN = b != b
        if aIsNaN || bIsNaN { return aIsNaN == bIsNaN ? ia < ib : bIsNaN }
        return a > b || (a == b && ia < ib)
    }

    /// `std::to_string(float)`: the value widened to double, then printf's `%f`.
    static func float(_ value: Float) -> String { double(Double(value)) }

    /// `std::to_string(double)`: printf's `%f` (six decimals; `inf`, `nan`, `-nan` as glibc writes them).
    static func double(_ value: Double) -> String {
        // 32 bytes hold every value below 1e24; larger ones take a second, exact-sized call.
        var buffer = [CChar](repeating: 0, count: 32)
        let needed = Int(withVaList([value]) { vsnprintf(&buffer, buffer.count, "%f", $0) })
        if needed >= buffer.count {
            buffer = [CChar](repeating: 0, count: needed + 1)
            _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%f", $0) }
        }
        return String(decoding: buffer.prefix(needed).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
