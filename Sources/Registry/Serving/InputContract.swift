import InferenceCodec
import Runtime

/// One input's preprocessing contract (the manifest's `preprocess.<input>`), checked against
/// the model's input: the raw form clients send (``raw``) and the one way it becomes what the
/// model takes (``apply(_:)``).
///
/// Invariants (checked by ``init(_:for:)``, which names the manifest key when one fails): the
/// model's input is FP32 with the rank of the model's layout (4 for NHWC and NCHW, 2 for NF, any
/// without a layout); `mean` and `std` give one value, or one per channel of a fixed channel
/// dimension; BGR has exactly 3 channels to reverse.
///
/// Thread-safety: immutable.
struct InputContract: Sendable {
    let name: String
    let declaration: Manifest.Preprocess
    /// The model's input.
    let model: TensorInfo
    /// What clients send: the declared datatype, in the declared layout, with the model's
    /// dimensions (its height and width: there is no resizing).
    let raw: TensorInfo

    init(_ declaration: Manifest.Preprocess, for input: TensorInfo) throws(RegistryError) {
        let key = "manifest key 'preprocess.\(input.name)"
        let shape = InputContract.text(input.shape.map(\.description))
        guard input.elementType == .float else {
            throw RegistryError(.invalidConfiguration, "\(key)': input '\(input.name)' is \(DataType(input.elementType).rawValue); preprocessing makes FP32 inputs")
        }
        if let target = declaration.modelLayout {
            let rank = target.isImage ? 4 : 2
            let layoutKey = declaration.toLayout != nil ? "\(key).to_layout'" : "\(key).accepts.layout'"
            guard input.shape.count == rank else {
                throw RegistryError(.invalidConfiguration, "\(layoutKey): '\(target.rawValue)' needs an input of rank \(rank), input '\(input.name)' is \(shape)")
            }
        }
        let channelDimension: TensorInfo.Dimension? = switch declaration.modelLayout {
        case .nchw?: input.shape[1]
        case .nhwc?: input.shape[3]
        case .nf?, nil: nil
        }
        for (field, values) in [("mean", declaration.mean), ("std", declaration.std)] {
            guard case .perChannel(let list) = values, let channelDimension else { continue }
            guard case .fixed(let channels) = channelDimension else {
                throw RegistryError(.invalidConfiguration, "\(key).\(field)': one value per channel needs a fixed channel dimension; input '\(input.name)' is \(shape)")
            }
            guard list.count == channels else {
                throw RegistryError(.invalidConfiguration, "\(key).\(field)': \(list.count) value\(list.count == 1 ? "" : "s") for \(channels) channel\(channels == 1 ? "" : "s") (input '\(input.name)' is \(shape), \(declaration.modelLayout!.rawValue))")
            }
        }
        if declaration.channelOrder == .bgr, channelDimension != .fixed(3) {
            throw RegistryError(.invalidConfiguration, "\(key).channel_order': 'BGR' reverses 3 channels; input '\(input.name)' has \(channelDimension?.description ?? "none") (\(shape))")
        }
        self.name = input.name
        self.declaration = declaration
        self.model = input
        // The model's dimensions, arranged as clients send them.
        let d = input.shape
        let rawShape: [TensorInfo.Dimension] = switch (declaration.layout, declaration.modelLayout) {
        case (.nhwc?, .nchw?): [d[0], d[2], d[3], d[1]]
        case (.nchw?, .nhwc?): [d[0], d[3], d[1], d[2]]
        default: d
        }
        self.raw = TensorInfo(name: input.name, elementType: declaration.datatype, shape: rawShape)
    }

    /// The contract as the 400 for a raw input that does not fit states it:
    /// `input 'image' takes UINT8 [N,28,28,3] raw pixels (NHWC)`. A variable dimension is
    /// written as its letter in the layout (N for the batch).
    var text: String {
        let letters = declaration.layout.map { $0.rawValue.map(String.init) }
        let dims = raw.shape.enumerated().map { index, dimension in
            if case .fixed(let n) = dimension { return "\(n)" }
            if let letters { return letters[index] }
            return index == 0 ? "N" : dimension.description
        }
        let what = declaration.layout?.isImage == true ? "raw pixels" : "raw values"
        let layout = declaration.layout.map { " (\($0.rawValue))" } ?? ""
        return "input '\(name)' takes \(DataType(declaration.datatype).rawValue) [\(dims.joined(separator: ","))] \(what)\(layout)"
    }

    private static func text(_ dims: [String]) -> String { "[\(dims.joined(separator: ", "))]" }

    /// The model's input for `tensor`, as the contract says: each element cast to Float32, times
    /// `scale`, minus `mean[c]`, divided by `std[c]` (channel `c` in the client's order), the
    /// channels reversed for BGR, laid out as the model takes it. A tensor of another datatype or
    /// shape is the client's error (400), stated as the contract.
    func apply(_ tensor: Tensor) throws(RegistryError) -> Tensor {
        guard tensor.elementType == declaration.datatype, raw.accepts(shape: tensor.shape) else {
            throw RegistryError(.invalidArgument, "\(text), got \(DataType(tensor.elementType).rawValue) [\(tensor.shape.map(String.init).joined(separator: ","))]")
        }
        let plan = Plan(declaration, shape: tensor.shape)
        do {
            return try Tensor(.float, shape: plan.modelShape) { floats in
                try tensor.withUnsafeBytes { source in
                    switch declaration.datatype {
                    case .uint8: plan.run(source, as: UInt8.self, into: floats) { Float($0) }
                    case .int8: plan.run(source, as: Int8.self, into: floats) { Float($0) }
                    case .uint16: plan.run(source, as: UInt16.self, into: floats) { Float($0) }
                    case .int16: plan.run(source, as: Int16.self, into: floats) { Float($0) }
                    case .uint32: plan.run(source, as: UInt32.self, into: floats) { Float($0) }
                    case .int32: plan.run(source, as: Int32.self, into: floats) { Float($0) }
                    case .uint64: plan.run(source, as: UInt64.self, into: floats) { Float($0) }
                    case .int64: plan.run(source, as: Int64.self, into: floats) { Float($0) }
                    case .float: plan.run(source, as: Float.self, into: floats) { $0 }
                    case .double: plan.run(source, as: Double.self, into: floats) { Float($0) }
                    default: preconditionFailure("Manifest.preprocessDatatypes admits no \(declaration.datatype)")
                    }
                }
            }
        } catch {
            throw RegistryError(.invalidArgument, "input '\(name)': \(error)")
        }
    }

    /// Where every element goes, for one request's shape: the batch, the pixels of a plane and
    /// the channels, with each channel's mean and divisor.
    struct Plan {
        var batch = 1, plane = 1, channels = 1
        var sourceChannelsLast = false, targetChannelsLast = false
        var swap = false
        var scale: Float
        var mean: [Float], std: [Float]
        var modelShape: [Int]

        init(_ contract: Manifest.Preprocess, shape: [Int]) {
            scale = contract.scale
            modelShape = shape
            switch contract.layout {
            case .nhwc?:
                (batch, plane, channels) = (shape[0], shape[1] * shape[2], shape[3])
                sourceChannelsLast = true
            case .nchw?:
                (batch, plane, channels) = (shape[0], shape[2] * shape[3], shape[1])
            case .nf?, nil:
                // One channel: every element is a pixel of one plane.
                plane = shape.reduce(1, *)
            }
            switch (contract.layout, contract.modelLayout) {
            case (.nhwc?, .nchw?): modelShape = [shape[0], shape[3], shape[1], shape[2]]
            case (.nchw?, .nhwc?): modelShape = [shape[0], shape[2], shape[3], shape[1]]
            default: break
            }
            targetChannelsLast = contract.modelLayout == .nhwc
            swap = contract.channelOrder == .bgr
            let count = channels
            mean = (0..<count).map { contract.mean.value(channel: $0) }
            std = (0..<count).map { contract.std.value(channel: $0) }
        }

        /// Fills `destination` from `source` (elements of type `T`, in the client's layout).
        /// Each value is `(float(x) * scale - mean[c]) / std[c]`: three Float32 operations,
        /// each rounded once, so a NumPy reference of the same formula in float32 agrees bit for
        /// bit.
        /// Both buffers are the tensors' own, 64-byte aligned (`TensorStorage`), so they may be
        /// read as their element types in place.
        func run<T>(_ source: UnsafeRawBufferPointer, as type: T.Type, into floats: UnsafeMutableRawBufferPointer,
                    _ float: (T) -> Float) {
            source.withMemoryRebound(to: T.self) { values in
                floats.withMemoryRebound(to: Float.self) { destination in
                    fill(values, destination, float)
                }
            }
        }

        private func fill<T>(_ values: UnsafeBufferPointer<T>, _ destination: UnsafeMutableBufferPointer<Float>, _ float: (T) -> Float) {
            precondition(values.count == batch * plane * channels && destination.count == values.count)
            for n in 0..<batch {
                for p in 0..<plane {
                    for c in 0..<channels {
                        let from = sourceChannelsLast ? (n * plane + p) * channels + c : (n * channels + c) * plane + p
                        let to = swap ? channels - 1 - c : c
                        let into = targetChannelsLast ? (n * plane + p) * channels + to : (n * channels + to) * plane + p
                        destination[into] = (float(values[from]) * scale - mean[c]) / std[c]
                    }
                }
            }
        }
    }
}
