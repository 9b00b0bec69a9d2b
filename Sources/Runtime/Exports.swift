// The tensor types (Tensor, ElementType, TensorInfo, RuntimeError) live in the Tensors module,
// which has no C dependency, so that the v2 codec can use them without linking ONNX Runtime.
// Everything that imports Runtime sees them as before.
@_exported import Tensors
