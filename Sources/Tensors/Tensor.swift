/// An immutable tensor: an element type, a shape and its elements.
///
/// Numeric tensors keep their elements in one contiguous, row-major, little-endian buffer that
/// ONNX Runtime reads in place (no copy on the way into `Session.run`); outputs keep the buffer
/// ONNX Runtime allocated (no copy on the way out). String tensors keep each element as bytes,
/// which may be any bytes, NUL included.
///
/// `Tensor` is a value type over shared immutable storage: copies are cheap and `Sendable`.
public struct Tensor: Sendable {
    public let elementType: ElementType
    /// Dimensions, each zero or more.
    public let shape: [Int]
    /// The product of the dimensions.
    public let elementCount: Int

    package enum Content: Sendable {
        case numeric(TensorStorage)
        case strings([[UInt8]])
    }
    package let content: Content

    /// The largest element count a tensor may have; far above any model's needs and far below
    /// where byte counts could overflow.
    public static let maximumElementCount = 1 << 40

    /// Checks `shape` (no negative dimension, bounded size) and returns its element count.
    public static func elementCount(of shape: [Int]) throws(RuntimeError) -> Int {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else {
                throw RuntimeError(.invalidTensor, "shape \(shape) has a negative dimension")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= maximumElementCount else {
                throw RuntimeError(.invalidTensor, "shape \(shape) has too many elements")
            }
            count = product
        }
        return count
    }

    package init(elementType: ElementType, shape: [Int], elementCount: Int, content: Content) {
        self.elementType = elementType
        self.shape = shape
        self.elementCount = elementCount
        self.content = content
    }

    // MARK: Building

    /// A tensor of `shape` holding `scalars` in row-major order.
    public init<T: TensorElement>(shape: [Int], scalars: [T]) throws(RuntimeError) {
        let count = try Tensor.elementCount(of: shape)
        guard scalars.count == count else {
            throw RuntimeError(
                .invalidTensor, "shape \(shape) needs \(count) elements, got \(scalars.count)")
        }
        let storage = TensorStorage(allocating: count * MemoryLayout<T>.stride)
        scalars.withUnsafeBytes { source in
            if let base = source.baseAddress, source.count > 0 {
                storage.bytes.baseAddress!.copyMemory(from: base, byteCount: source.count)
            }
        }
        self.init(elementType: T.elementType, shape: shape, elementCount: count, content: .numeric(storage))
    }

    /// A numeric tensor whose bytes are written by `initializer` straight into the tensor's own
    /// buffer (exactly `elementCount × byteSize` bytes, little-endian), so that a decoder needs no
    /// intermediate array. Bool bytes must be 0 or 1.
    public init(
        _ elementType: ElementType, shape: [Int],
        initializingWith initializer: (UnsafeMutableRawBufferPointer) throws -> Void
    ) throws {
        guard let size = elementType.byteSize else {
            throw RuntimeError(.invalidTensor, "string tensors are built from strings, not bytes")
        }
        let count = try Tensor.elementCount(of: shape)
        let storage = TensorStorage(allocating: count * size)
        try initializer(storage.bytes)
        if elementType == .bool, let bad = storage.bytes.firstIndex(where: { $0 > 1 }) {
            throw RuntimeError(
                .invalidTensor, "bool tensor element \(bad) is \(storage.bytes[bad]), not 0 or 1")
        }
        self.init(elementType: elementType, shape: shape, elementCount: count, content: .numeric(storage))
    }

    /// A numeric tensor copied from raw little-endian bytes.
    public init(_ elementType: ElementType, shape: [Int], bytes: UnsafeRawBufferPointer) throws {
        guard let size = elementType.byteSize else {
            throw RuntimeError(.invalidTensor, "string tensors are built from strings, not bytes")
        }
        let count = try Tensor.elementCount(of: shape)
        guard bytes.count == count * size else {
            throw RuntimeError(
                .invalidTensor,
                "\(elementType) tensor of shape \(shape) needs \(count * size) bytes, got \(bytes.count)")
        }
        try self.init(elementType, shape: shape) { destination in
            if bytes.count > 0 { destination.copyMemory(from: bytes) }
        }
    }

    /// A string tensor; each element may hold any bytes.
    public init(shape: [Int], byteStrings: [[UInt8]]) throws(RuntimeError) {
        let count = try Tensor.elementCount(of: shape)
        guard byteStrings.count == count else {
            throw RuntimeError(
                .invalidTensor, "shape \(shape) needs \(count) elements, got \(byteStrings.count)")
        }
        self.init(elementType: .string, shape: shape, elementCount: count, content: .strings(byteStrings))
    }

    /// A string tensor of UTF-8 strings.
    public init(shape: [Int], strings: [String]) throws(RuntimeError) {
        try self.init(shape: shape, byteStrings: strings.map { Array($0.utf8) })
    }

    // MARK: Reading

    /// The elements as `T`, which must be the Swift type of this tensor's element type.
    public func scalars<T: TensorElement>(as type: T.Type = T.self) throws(RuntimeError) -> [T] {
        guard T.elementType == elementType, case .numeric(let storage) = content else {
            throw RuntimeError(
                .typeMismatch, "tensor holds \(elementType), not \(T.elementType)")
        }
        return [T](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
            if elementCount > 0 {
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(storage.bytes))
            }
            initialized = elementCount
        }
    }

    /// Calls `body` with the numeric elements' bytes, in place. Throws for string tensors.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard case .numeric(let storage) = content else {
            throw RuntimeError(.typeMismatch, "string tensors have no flat byte buffer")
        }
        return try withExtendedLifetime(storage) { try body(UnsafeRawBufferPointer(storage.bytes)) }
    }

    /// The size of the numeric elements in bytes, or the sum of the string lengths.
    public var byteCount: Int {
        switch content {
        case .numeric(let storage): storage.bytes.count
        case .strings(let strings): strings.reduce(0) { $0 + $1.count }
        }
    }

    /// The elements of a string tensor, as bytes.
    public func byteStrings() throws(RuntimeError) -> [[UInt8]] {
        guard case .strings(let strings) = content else {
            throw RuntimeError(.typeMismatch, "tensor holds \(elementType), not string")
        }
        return strings
    }

    /// The elements of a string tensor decoded as UTF-8; throws if one is not valid UTF-8.
    public func strings() throws(RuntimeError) -> [String] {
        var result: [String] = []
        for (index, bytes) in try byteStrings().enumerated() {
            guard let string = String(validating: bytes, as: UTF8.self) else {
                throw RuntimeError(.invalidTensor, "string tensor element \(index) is not valid utf-8")
            }
            result.append(string)
        }
        return result
    }
}
