/// Rows: the first dimension of a tensor, the batch. A pipeline's `switch` splits a request's rows
/// by the model that takes each, and puts the answers back in row order.
extension Tensor {
    /// The number of rows (the first dimension); a scalar has none.
    public var rowCount: Int? { shape.first }

    /// The rows at `indices`, in that order, as a new tensor of shape `[indices.count] + shape[1...]`.
    public func rows(_ indices: [Int]) throws(RuntimeError) -> Tensor {
        guard let rows = shape.first else { throw RuntimeError(.invalidTensor, "a scalar has no rows") }
        let rowShape = Array(shape.dropFirst())
        let perRow = try Tensor.elementCount(of: rowShape)
        for index in indices where !(0..<rows).contains(index) {
            throw RuntimeError(.invalidTensor, "row \(index) is outside \(rows) rows")
        }
        let newShape = [indices.count] + rowShape
        switch content {
        case .strings(let strings):
            var picked: [[UInt8]] = []
            picked.reserveCapacity(indices.count * perRow)
            for index in indices { picked += strings[(index * perRow)..<((index + 1) * perRow)] }
            return try Tensor(shape: newShape, byteStrings: picked)
        case .numeric(let storage):
            let rowBytes = perRow * elementType.byteSize!
            return try withExtendedLifetime(storage) { () throws(RuntimeError) -> Tensor in
                let source = UnsafeRawBufferPointer(storage.bytes)
                do {
                    return try Tensor(elementType, shape: newShape) { destination in
                        for (slot, index) in indices.enumerated() where rowBytes > 0 {
                            destination.baseAddress!.advanced(by: slot * rowBytes)
                                .copyMemory(from: source.baseAddress!.advanced(by: index * rowBytes), byteCount: rowBytes)
                        }
                    }
                } catch let error as RuntimeError {
                    throw error
                } catch {
                    throw RuntimeError(.invalidTensor, "\(error)")
                }
            }
        }
    }

    /// Puts parts back together by row: `parts[k]` holds the rows whose places in the result are
    /// `parts[k].rows` (together every row of `0..<rowCount` exactly once). Every part must have
    /// the same element type and the same shape past the first dimension.
    public static func merging(rows rowCount: Int, from parts: [(tensor: Tensor, rows: [Int])]) throws(RuntimeError) -> Tensor {
        guard let first = parts.first else { throw RuntimeError(.invalidTensor, "nothing to merge") }
        let rowShape = Array(first.tensor.shape.dropFirst())
        var place = [(part: Int, row: Int)?](repeating: nil, count: rowCount)
        for (k, part) in parts.enumerated() {
            guard part.tensor.elementType == first.tensor.elementType, Array(part.tensor.shape.dropFirst()) == rowShape,
                  part.tensor.shape.first == part.rows.count else {
                throw RuntimeError(.invalidTensor, "parts differ: \(part.tensor.elementType) \(part.tensor.shape) and \(first.tensor.elementType) \(first.tensor.shape)")
            }
            for (row, target) in part.rows.enumerated() {
                guard (0..<rowCount).contains(target), place[target] == nil else {
                    throw RuntimeError(.invalidTensor, "row \(target) is given twice or is outside \(rowCount) rows")
                }
                place[target] = (k, row)
            }
        }
        let sources = try place.enumerated().map { (target, source) throws(RuntimeError) -> (part: Int, row: Int) in
            guard let source else { throw RuntimeError(.invalidTensor, "row \(target) is missing") }
            return source
        }
        let perRow = try Tensor.elementCount(of: rowShape)
        let shape = [rowCount] + rowShape
        if first.tensor.elementType == .string {
            var strings: [[UInt8]] = []
            strings.reserveCapacity(rowCount * perRow)
            let all = try parts.map { (part) throws(RuntimeError) -> [[UInt8]] in try part.tensor.byteStrings() }
            for source in sources { strings += all[source.part][(source.row * perRow)..<((source.row + 1) * perRow)] }
            return try Tensor(shape: shape, byteStrings: strings)
        }
        let rowBytes = perRow * first.tensor.elementType.byteSize!
        do {
            return try Tensor(first.tensor.elementType, shape: shape) { destination in
                for (target, source) in sources.enumerated() where rowBytes > 0 {
                    try parts[source.part].tensor.withUnsafeBytes { bytes in
                        destination.baseAddress!.advanced(by: target * rowBytes)
                            .copyMemory(from: bytes.baseAddress!.advanced(by: source.row * rowBytes), byteCount: rowBytes)
                    }
                }
            }
        } catch let error as RuntimeError {
            throw error
        } catch {
            throw RuntimeError(.invalidTensor, "\(error)")
        }
    }

    /// Each element's text form, for a `switch` that compares a scalar per row with its cases:
    /// integers in decimal, booleans as `true`/`false`, strings as themselves (UTF-8); floating
    /// point elements have no exact text and are refused.
    public func elementTexts() throws(RuntimeError) -> [String] {
        switch elementType {
        case .string: return try strings()
        case .bool: return try scalars(as: Bool.self).map { $0 ? "true" : "false" }
        case .int8: return try scalars(as: Int8.self).map(String.init)
        case .int16: return try scalars(as: Int16.self).map(String.init)
        case .int32: return try scalars(as: Int32.self).map(String.init)
        case .int64: return try scalars(as: Int64.self).map(String.init)
        case .uint8: return try scalars(as: UInt8.self).map(String.init)
        case .uint16: return try scalars(as: UInt16.self).map(String.init)
        case .uint32: return try scalars(as: UInt32.self).map(String.init)
        case .uint64: return try scalars(as: UInt64.self).map(String.init)
        case .float, .double, .float16, .bfloat16:
            throw RuntimeError(.typeMismatch, "a \(elementType) value has no exact text to compare with a case")
        }
    }
}
