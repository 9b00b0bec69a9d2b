import Runtime

/// How a shadow's answer compares with the primary's: a pure function of two tensors.
///
/// Labels (integer, boolean or string outputs) agree row by row when equal. Scores (floating
/// point, rank 2 or more with at least two classes in the last dimension) agree when their
/// argmax is the same; their largest absolute difference is reported too. Other numeric
/// outputs (regressions) report only the largest absolute difference.
public enum ShadowComparison {
    public enum Method: String, Sendable { case top1, maxAbsDiff = "max_abs_diff" }

    public struct Outcome: Sendable, Equatable {
        public var method: Method
        public var rows: Int
        public var agreedRows: Int
        public var maxAbsDiff: Double?
    }

    /// Nil when the two cannot be compared (different types or shapes).
    public static func compare(primary: Tensor, shadow: Tensor) -> Outcome? {
        guard primary.elementType == shadow.elementType, primary.shape == shadow.shape else { return nil }
        let rows = max(primary.shape.first ?? 1, 0)
        let count = primary.shape.reduce(1, *)
        guard rows > 0, count % rows == 0 else { return Outcome(method: .top1, rows: 0, agreedRows: 0, maxAbsDiff: nil) }
        let width = count / rows
        if let a = doubles(primary), let b = doubles(shadow) {
            var diff = 0.0
            for (x, y) in zip(a, b) {
                let d = abs(x - y)
                diff = d.isNaN ? .infinity : max(diff, d)
            }
            guard primary.shape.count >= 2, primary.shape[primary.shape.count - 1] >= 2 else {
                return Outcome(method: .maxAbsDiff, rows: rows, agreedRows: 0, maxAbsDiff: diff)
            }
            var agreed = 0
            for row in 0..<rows where argmax(a, row * width, width) == argmax(b, row * width, width) { agreed += 1 }
            return Outcome(method: .top1, rows: rows, agreedRows: agreed, maxAbsDiff: diff)
        }
        guard let a = labels(primary), let b = labels(shadow) else { return nil }
        var agreed = 0
        for row in 0..<rows where a[(row * width)..<((row + 1) * width)] == b[(row * width)..<((row + 1) * width)] { agreed += 1 }
        return Outcome(method: .top1, rows: rows, agreedRows: agreed, maxAbsDiff: nil)
    }

    private static func argmax(_ values: [Double], _ start: Int, _ width: Int) -> Int {
        var best = start
        for i in start..<(start + width) where values[i] > values[best] { best = i }
        return best - start
    }

    private static func doubles(_ t: Tensor) -> [Double]? {
        switch t.elementType {
        case .float: (try? t.scalars(as: Float.self))?.map(Double.init)
        case .double: try? t.scalars(as: Double.self)
        case .float16: (try? t.scalars(as: Float16.self))?.map(Double.init)
        case .bfloat16: (try? t.scalars(as: BFloat16.self))?.map { Double($0.floatValue) }
        default: nil
        }
    }

    /// Integer, boolean and string elements as comparable byte strings.
    private static func labels(_ t: Tensor) -> [[UInt8]]? {
        if t.elementType == .string { return try? t.byteStrings() }
        guard let bytes = try? t.withUnsafeBytes({ Array($0) }) else { return nil }
        guard let size = t.elementType.byteSize, size > 0, bytes.count % size == 0 else { return nil }
        return stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<($0 + size)]) }
    }
}
