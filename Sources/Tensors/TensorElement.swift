/// A Swift type whose values are the elements of one ONNX tensor element type, stored with the
/// same size and bit layout (little-endian, as ONNX Runtime keeps them on the CPU).
public protocol TensorElement: Sendable {
    static var elementType: ElementType { get }
}

extension Float: TensorElement { public static var elementType: ElementType { .float } }
extension Double: TensorElement { public static var elementType: ElementType { .double } }
extension Float16: TensorElement { public static var elementType: ElementType { .float16 } }
extension BFloat16: TensorElement { public static var elementType: ElementType { .bfloat16 } }
extension Int8: TensorElement { public static var elementType: ElementType { .int8 } }
extension Int16: TensorElement { public static var elementType: ElementType { .int16 } }
extension Int32: TensorElement { public static var elementType: ElementType { .int32 } }
extension Int64: TensorElement { public static var elementType: ElementType { .int64 } }
extension UInt8: TensorElement { public static var elementType: ElementType { .uint8 } }
extension UInt16: TensorElement { public static var elementType: ElementType { .uint16 } }
extension UInt32: TensorElement { public static var elementType: ElementType { .uint32 } }
extension UInt64: TensorElement { public static var elementType: ElementType { .uint64 } }
/// ONNX keeps bool as one byte holding 0 or 1, as Swift does.
extension Bool: TensorElement { public static var elementType: ElementType { .bool } }
