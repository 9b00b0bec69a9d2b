import CONNXRuntime
import Tensors

/// Reading a loaded session's signature and metadata (at `init`, once).
extension Session {
    /// A tensor's dimensions from its `OrtTensorTypeAndShapeInfo` (-1 for a variable one).
    static func dimensions(of info: OpaquePointer, api: OrtApi) throws(RuntimeError) -> [Int64] {
        var rank = 0
        try ORT.check(api.GetDimensionsCount!(info, &rank), "reading a rank")
        var dims = [Int64](repeating: 0, count: rank)
        if rank > 0 { try ORT.check(api.GetDimensions!(info, &dims, rank), "reading dimensions") }
        return dims
    }

    /// The session's inputs or outputs, in graph order; refuses any that is not a dense tensor.
    static func signature(of session: OpaquePointer, api: OrtApi, inputs: Bool) throws(RuntimeError) -> [TensorInfo] {
        let kind = inputs ? "input" : "output"
        var count = 0
        try ORT.check(
            inputs ? api.SessionGetInputCount!(session, &count) : api.SessionGetOutputCount!(session, &count),
            "counting \(kind)s")
        var allocator: UnsafeMutablePointer<OrtAllocator>?
        try ORT.check(api.GetAllocatorWithDefaultOptions!(&allocator), "getting the allocator")
        var result: [TensorInfo] = []
        for index in 0..<count {
            var cName: UnsafeMutablePointer<CChar>?
            try ORT.check(
                inputs ? api.SessionGetInputName!(session, index, allocator, &cName)
                    : api.SessionGetOutputName!(session, index, allocator, &cName),
                "reading \(kind) \(index)'s name")
            let name = String(cString: cName!)
            _ = api.AllocatorFree!(allocator, cName)

            var typeInfo: OpaquePointer?
            try ORT.check(
                inputs ? api.SessionGetInputTypeInfo!(session, index, &typeInfo)
                    : api.SessionGetOutputTypeInfo!(session, index, &typeInfo),
                "reading \(kind) '\(name)'")
            defer { api.ReleaseTypeInfo!(typeInfo) }
            var onnxType = ONNX_TYPE_UNKNOWN
            try ORT.check(api.GetOnnxTypeFromTypeInfo!(typeInfo, &onnxType), "reading \(kind) '\(name)'")
            guard onnxType == ONNX_TYPE_TENSOR else {
                let what = [ONNX_TYPE_SEQUENCE: "a sequence", ONNX_TYPE_MAP: "a map", ONNX_TYPE_OPTIONAL: "an optional",
                            ONNX_TYPE_SPARSETENSOR: "a sparse tensor"][onnxType] ?? "not a tensor"
                throw RuntimeError(
                    .unsupportedType,
                    "\(kind) '\(name)' is \(what); only dense tensors are served (for scikit-learn models convert with zipmap disabled)")
            }
            // Borrowed from typeInfo: not released separately (onnxruntime_c_api.h, CastTypeInfoToTensorInfo).
            var tensorInfo: OpaquePointer?
            try ORT.check(api.CastTypeInfoToTensorInfo!(typeInfo, &tensorInfo), "reading \(kind) '\(name)'")
            var rawType = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED
            try ORT.check(api.GetTensorElementType!(tensorInfo, &rawType), "reading \(kind) '\(name)'")
            let elementType = try ElementType(ort: rawType, context: "\(kind) '\(name)'")
            let dims = try dimensions(of: tensorInfo!, api: api)
            var symbolic = [UnsafePointer<CChar>?](repeating: nil, count: dims.count)
            if !dims.isEmpty {
                try ORT.check(
                    api.GetSymbolicDimensions!(tensorInfo, &symbolic, dims.count), "reading \(kind) '\(name)'")
            }
            let shape: [TensorInfo.Dimension] = zip(dims, symbolic).map { dim, symbol in
                if dim >= 0 { return .fixed(Int(dim)) }
                let label = symbol.map { String(cString: $0) } ?? ""
                return .variable(name: label.isEmpty ? nil : label)
            }
            result.append(TensorInfo(name: name, elementType: elementType, shape: shape))
        }
        return result
    }

    /// The model's metadata (producer, graph name, domain, description, version, custom keys).
    static func metadata(of session: OpaquePointer, api: OrtApi) throws(RuntimeError) -> ModelMetadata {
        var handle: OpaquePointer?
        try ORT.check(api.SessionGetModelMetadata!(session, &handle), "reading model metadata")
        defer { api.ReleaseModelMetadata!(handle) }
        var allocator: UnsafeMutablePointer<OrtAllocator>?
        try ORT.check(api.GetAllocatorWithDefaultOptions!(&allocator), "getting the allocator")

        func string(
            _ get: (OpaquePointer?, UnsafeMutablePointer<OrtAllocator>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> OpaquePointer?,
            _ what: String
        ) throws(RuntimeError) -> String {
            var value: UnsafeMutablePointer<CChar>?
            try ORT.check(get(handle, allocator, &value), "reading the model's \(what)")
            defer { _ = api.AllocatorFree!(allocator, value) }
            return value.map { String(cString: $0) } ?? ""
        }
        var metadata = ModelMetadata()
        metadata.producerName = try string(api.ModelMetadataGetProducerName!, "producer")
        metadata.graphName = try string(api.ModelMetadataGetGraphName!, "graph name")
        metadata.domain = try string(api.ModelMetadataGetDomain!, "domain")
        metadata.description = try string(api.ModelMetadataGetDescription!, "description")
        try ORT.check(api.ModelMetadataGetVersion!(handle, &metadata.version), "reading the model's version")

        var keys: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        var keyCount: Int64 = 0
        try ORT.check(
            api.ModelMetadataGetCustomMetadataMapKeys!(handle, allocator, &keys, &keyCount), "reading custom metadata")
        guard let keys else { return metadata }
        defer {
            for i in 0..<Int(keyCount) { _ = api.AllocatorFree!(allocator, keys[i]) }
            _ = api.AllocatorFree!(allocator, keys)
        }
        for i in 0..<Int(keyCount) {
            guard let key = keys[i] else { continue }
            var value: UnsafeMutablePointer<CChar>?
            try ORT.check(
                api.ModelMetadataLookupCustomMetadataMap!(handle, allocator, key, &value), "reading custom metadata")
            if let value {
                metadata.custom[String(cString: key)] = String(cString: value)
                _ = api.AllocatorFree!(allocator, value)
            }
        }
        return metadata
    }
}
