/// The element type of a tensor, one case per ONNX tensor element type that this module serves.
///
/// Raw values are ONNX's `TensorProto.DataType` numbers, which ONNX Runtime's
/// `ONNXTensorElementDataType` shares (the conversion is in the Runtime module).
public enum ElementType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case float = 1
    case uint8 = 2
    case int8 = 3
    case uint16 = 4
    case int16 = 5
    case int32 = 6
    case int64 = 7
    case string = 8
    case bool = 9
    case float16 = 10
    case double = 11
    case uint32 = 12
    case uint64 = 13
    case bfloat16 = 16

    /// Bytes per element; `nil` for strings, whose elements vary in length.
    public var byteSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16, .float16, .bfloat16: 2
        case .float, .int32, .uint32: 4
        case .double, .int64, .uint64: 8
        case .string: nil
        }
    }

    /// ONNX's name of the type ("float", "int64", "string"...).
    public var description: String {
        switch self {
        case .float: "float"
        case .uint8: "uint8"
        case .int8: "int8"
        case .uint16: "uint16"
        case .int16: "int16"
        case .int32: "int32"
        case .int64: "int64"
        case .string: "string"
        case .bool: "bool"
        case .float16: "float16"
        case .double: "double"
        case .uint32: "uint32"
        case .uint64: "uint64"
        case .bfloat16: "bfloat16"
        }
    }

    /// ONNX's name for a raw ONNX type number, also for types this module does not serve,
    /// so that an error can name them.
    package static func onnxName(_ raw: Int32) -> String {
        if let known = ElementType(rawValue: raw) { return known.description }
        switch raw {
        case 0: return "undefined"
        case 14: return "complex64"
        case 15: return "complex128"
        case 17...20: return "float8"
        case 21: return "uint4"
        case 22: return "int4"
        default: return "type \(raw)"
        }
    }
}
