/// One input or output of a model, as its graph declares it.
public struct TensorInfo: Sendable, Equatable, CustomStringConvertible {
    /// A dimension of a declared shape.
    public enum Dimension: Sendable, Equatable, CustomStringConvertible {
        case fixed(Int)
        /// Decided per request; ONNX may name it ("batch", "N").
        case variable(name: String?)

        /// The dimension as KServe and Triton write it: the number, or -1 when variable.
        public var value: Int {
            if case .fixed(let n) = self { return n }
            return -1
        }

        public var description: String {
            switch self {
            case .fixed(let n): "\(n)"
            case .variable(let name?): name
            case .variable(nil): "?"
            }
        }
    }

    public let name: String
    public let elementType: ElementType
    public let shape: [Dimension]

    public init(name: String, elementType: ElementType, shape: [Dimension]) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }

    public var description: String {
        "\(name): \(elementType)[\(shape.map(\.description).joined(separator: ", "))]"
    }

    /// Whether a tensor of `tensorShape` fits this declaration: same rank, and equal wherever the
    /// declared dimension is fixed.
    public func accepts(shape tensorShape: [Int]) -> Bool {
        guard tensorShape.count == shape.count else { return false }
        for (declared, actual) in zip(shape, tensorShape) {
            if case .fixed(let n) = declared, n != actual { return false }
        }
        return true
    }
}
