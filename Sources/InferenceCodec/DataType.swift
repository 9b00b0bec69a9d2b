import Tensors

/// The KServe v2 / Triton datatype names, and how they map to ONNX element types.
public enum DataType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case uint8 = "UINT8", uint16 = "UINT16", uint32 = "UINT32", uint64 = "UINT64"
    case int8 = "INT8", int16 = "INT16", int32 = "INT32", int64 = "INT64"
    case fp16 = "FP16", bf16 = "BF16", fp32 = "FP32", fp64 = "FP64"
    case bytes = "BYTES"

    public init(_ element: ElementType) {
        self = switch element {
        case .bool: .bool
        case .uint8: .uint8
        case .uint16: .uint16
        case .uint32: .uint32
        case .uint64: .uint64
        case .int8: .int8
        case .int16: .int16
        case .int32: .int32
        case .int64: .int64
        case .float16: .fp16
        case .bfloat16: .bf16
        case .float: .fp32
        case .double: .fp64
        case .string: .bytes
        }
    }

    public var elementType: ElementType {
        switch self {
        case .bool: .bool
        case .uint8: .uint8
        case .uint16: .uint16
        case .uint32: .uint32
        case .uint64: .uint64
        case .int8: .int8
        case .int16: .int16
        case .int32: .int32
        case .int64: .int64
        case .fp16: .float16
        case .bf16: .bfloat16
        case .fp32: .float
        case .fp64: .double
        case .bytes: .string
        }
    }
}
