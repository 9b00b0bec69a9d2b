import CONNXRuntime
import Tensors

/// ONNX Runtime's element type enum shares ONNX's `TensorProto.DataType` numbers with
/// ``ElementType``'s raw values.
extension ElementType {
    init(ort: ONNXTensorElementDataType, context: @autoclosure () -> String) throws(RuntimeError) {
        guard let type = ElementType(rawValue: Int32(ort.rawValue)) else {
            throw RuntimeError(
                .unsupportedType,
                "\(context()) has element type \(ElementType.onnxName(Int32(ort.rawValue))), which is not served")
        }
        self = type
    }

    var ort: ONNXTensorElementDataType { ONNXTensorElementDataType(UInt32(rawValue)) }
}
