import CONNXRuntime
import Glibc
import Tensors

/// A loaded model, ready to run.
///
/// Thread-safety: ``run(_:outputs:cancellation:)`` may be called from many threads at once on
/// one session. ONNX Runtime guarantees that `Run` on one `OrtSession` is thread-safe
/// (microsoft/onnxruntime docs/NotesOnThreading.md, and commit 674afbe, #19301: "InferenceSession::Run()
/// is guaranteed to be thread-safe meaning multiple threads can call this function concurrently").
/// Everything else here is immutable after `init`.
///
/// `Run` blocks its thread for the length of the computation: call it from threads you own, not
/// from Swift's cooperative pool.
///
/// Ownership: the `OrtSession` and the C copies of the names are released once, in `deinit`.
public final class Session: @unchecked Sendable {
    /// The model's inputs, in graph order.
    public let inputs: [TensorInfo]
    /// The model's outputs, in graph order.
    public let outputs: [TensorInfo]
    public let metadata: ModelMetadata
    /// The execution provider the session was built for.
    public let executionProvider: SessionOptions.ExecutionProvider
    /// The session's own intra-op thread count, or nil when it runs on the environment's shared pool.
    public let intraOpThreads: Int?

    private let environment: Environment
    /// The function table, kept here so that a run does not fetch it again.
    private let api: OrtApi
    private let handle: OpaquePointer
    private let inputNames: [UnsafeMutablePointer<CChar>]
    private let outputNames: [UnsafeMutablePointer<CChar>]
    private let inputIndex: [String: Int]
    private let outputIndex: [String: Int]

    /// Loads the model at `path`.
    public convenience init(
        path: String, environment: Environment, options: SessionOptions = SessionOptions()
    ) throws(RuntimeError) {
        try self.init(environment: environment, options: options, what: "model '\(path)'") {
            api, env, sessionOptions, out in
            api.CreateSession!(env, path, sessionOptions, &out)
        }
    }

    /// Loads a model from its serialised bytes.
    public convenience init(
        bytes: UnsafeRawBufferPointer, environment: Environment, options: SessionOptions = SessionOptions()
    ) throws(RuntimeError) {
        try self.init(environment: environment, options: options, what: "model (\(bytes.count) bytes)") {
            api, env, sessionOptions, out in
            api.CreateSessionFromArray!(env, bytes.baseAddress, bytes.count, sessionOptions, &out)
        }
    }

    private init(
        environment: Environment, options: SessionOptions, what: String,
        create: (OrtApi, OpaquePointer, OpaquePointer, inout OpaquePointer?) -> OpaquePointer?
    ) throws(RuntimeError) {
        let api = try ORT.api()
        var sessionOptions: OpaquePointer?
        try ORT.check(api.CreateSessionOptions!(&sessionOptions), "creating session options")
        defer { api.ReleaseSessionOptions!(sessionOptions) }
        try Session.configure(sessionOptions!, options, environment: environment, api: api)

        var session: OpaquePointer?
        try ORT.check(create(api, environment.handle, sessionOptions!, &session), "loading \(what)")
        guard let session else { throw RuntimeError(.fail, "loading \(what): no session returned") }
        // From here on `session` is released by deinit, or below if reading the signature fails.
        do throws(RuntimeError) {
            let inputs = try Session.signature(of: session, api: api, inputs: true)
            let outputs = try Session.signature(of: session, api: api, inputs: false)
            self.metadata = try Session.metadata(of: session, api: api)
            self.inputs = inputs
            self.outputs = outputs
        } catch {
            api.ReleaseSession!(session)
            throw error
        }
        self.handle = session
        self.api = api
        self.environment = environment
        self.executionProvider = options.executionProvider
        self.intraOpThreads = options.intraOpThreads
        self.inputNames = inputs.map { strdup($0.name)! }
        self.outputNames = outputs.map { strdup($0.name)! }
        self.inputIndex = Dictionary(uniqueKeysWithValues: inputs.enumerated().map { ($1.name, $0) })
        self.outputIndex = Dictionary(uniqueKeysWithValues: outputs.enumerated().map { ($1.name, $0) })
    }

    deinit {
        api.ReleaseSession!(handle)
        inputNames.forEach { free($0) }
        outputNames.forEach { free($0) }
    }

    private static func configure(
        _ handle: OpaquePointer, _ options: SessionOptions, environment: Environment, api: OrtApi
    ) throws(RuntimeError) {
        try ORT.check(
            api.SetSessionGraphOptimizationLevel!(handle, GraphOptimizationLevel(options.optimizationLevel.rawValue)),
            "setting the optimisation level")
        if let threads = options.intraOpThreads {
            guard threads >= 0 else { throw RuntimeError(.invalidArgument, "intra-op threads must be zero or more") }
            try ORT.check(api.SetIntraOpNumThreads!(handle, Int32(threads)), "setting intra-op threads")
            try ORT.check(api.SetInterOpNumThreads!(handle, 1), "setting inter-op threads")
        } else {
            try ORT.check(api.DisablePerSessionThreads!(handle), "choosing the shared thread pools")
        }
        if case .cuda(let device) = options.executionProvider {
            let offered = environment.availableProviders
            guard offered.contains("CUDAExecutionProvider") else {
                throw RuntimeError(
                    .executionProviderFailure,
                    "the loaded onnx runtime \(environment.version) does not offer cuda (it offers \(offered.joined(separator: ", ")))")
            }
            var cuda: OpaquePointer?
            try ORT.check(api.CreateCUDAProviderOptions!(&cuda), "creating cuda options")
            defer { api.ReleaseCUDAProviderOptions!(cuda) }
            let key = strdup("device_id")!, value = strdup(String(device))!
            defer { free(key); free(value) }
            var keys: [UnsafePointer<CChar>?] = [UnsafePointer(key)]
            var values: [UnsafePointer<CChar>?] = [UnsafePointer(value)]
            try ORT.check(api.UpdateCUDAProviderOptions!(cuda, &keys, &values, 1), "setting the cuda device")
            try ORT.check(
                api.SessionOptionsAppendExecutionProvider_CUDA_V2!(handle, cuda), "enabling cuda device \(device)")
        }
    }

    // MARK: Running

    /// Runs the model.
    ///
    /// - Parameters:
    ///   - inputs: a tensor for every model input, by name.
    ///   - requested: the outputs wanted, by name; `nil` for all of them.
    ///   - cancellation: lets another thread stop the run.
    /// - Returns: the requested outputs, by name.
    public func run(
        _ inputs: [String: Tensor], outputs requested: [String]? = nil,
        cancellation: RunCancellation? = nil
    ) throws(RuntimeError) -> [String: Tensor] {
        // Check everything we can before ONNX Runtime sees it, to say exactly what is wrong.
        var order: [(index: Int, tensor: Tensor)] = []
        order.reserveCapacity(inputs.count)
        for (name, tensor) in inputs {
            guard let index = inputIndex[name] else {
                throw RuntimeError(
                    .unknownName,
                    "model has no input '\(name)' (inputs: \(self.inputs.map(\.name).joined(separator: ", ")))")
            }
            let declared = self.inputs[index]
            guard tensor.elementType == declared.elementType else {
                throw RuntimeError(
                    .typeMismatch,
                    "input '\(name)' must be \(declared.elementType), got \(tensor.elementType)")
            }
            guard declared.accepts(shape: tensor.shape) else {
                throw RuntimeError(
                    .shapeMismatch,
                    "input '\(name)' must have shape [\(declared.shape.map(\.description).joined(separator: ", "))], got \(tensor.shape)")
            }
            order.append((index, tensor))
        }
        if order.count < self.inputs.count {
            let missing = self.inputs.map(\.name).filter { inputs[$0] == nil }
            throw RuntimeError(.missingInput, "missing input '\(missing.joined(separator: "', '"))'")
        }
        var outputSlots: [Int] = []
        if let requested {
            for name in requested {
                guard let index = outputIndex[name] else {
                    throw RuntimeError(
                        .unknownName,
                        "model has no output '\(name)' (outputs: \(self.outputs.map(\.name).joined(separator: ", ")))")
                }
                if !outputSlots.contains(index) { outputSlots.append(index) }
            }
        } else {
            outputSlots = Array(self.outputs.indices)
        }

        var values: [OpaquePointer?] = []
        values.reserveCapacity(order.count)
        defer { for value in values { api.ReleaseValue!(value) } }
        for (index, tensor) in order {
            values.append(try makeValue(tensor, name: self.inputs[index].name, api: api))
        }
        var names: [UnsafePointer<CChar>?] = order.map { UnsafePointer(inputNames[$0.index]) }
        var wanted: [UnsafePointer<CChar>?] = outputSlots.map { UnsafePointer(outputNames[$0]) }
        var results = [OpaquePointer?](repeating: nil, count: outputSlots.count)

        let status = withExtendedLifetime(inputs) {
            api.Run!(
                handle, cancellation?.handle, &names, &values, values.count,
                &wanted, wanted.count, &results)
        }
        if let status {
            for result in results { api.ReleaseValue!(result) }
            let error = ORT.error(from: status, "running the model")
            if cancellation?.isCancelled == true {
                throw RuntimeError(.cancelled, "run cancelled")
            }
            throw error
        }
        var output: [String: Tensor] = [:]
        output.reserveCapacity(outputSlots.count)
        var failure: RuntimeError?
        for (slot, value) in zip(outputSlots, results) {
            guard let value else { continue }
            if failure != nil { api.ReleaseValue!(value); continue }
            do throws(RuntimeError) {
                output[self.outputs[slot].name] = try Session.tensor(taking: value, api: api)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return output
    }

    /// An `OrtValue` over `tensor`. Numeric tensors are wrapped in place
    /// (`CreateTensorWithDataAsOrtValue` does not copy: the caller keeps the buffer alive until
    /// the value is released, which `run` does by holding `inputs`); strings are copied in,
    /// each with its exact length so that embedded NULs survive.
    private func makeValue(_ tensor: Tensor, name: String, api: OrtApi) throws(RuntimeError) -> OpaquePointer {
        let shape = tensor.shape.map(Int64.init)
        var value: OpaquePointer?
        switch tensor.content {
        case .numeric(let storage):
            try shape.withUnsafeBufferPointer { dims throws(RuntimeError) in
                try ORT.check(
                    api.CreateTensorWithDataAsOrtValue!(
                        environment.cpuMemoryInfo, storage.bytes.baseAddress, storage.bytes.count,
                        dims.baseAddress, dims.count, tensor.elementType.ort, &value),
                    "input '\(name)'")
            }
        case .strings(let strings):
            var allocator: UnsafeMutablePointer<OrtAllocator>?
            try ORT.check(api.GetAllocatorWithDefaultOptions!(&allocator), "getting the allocator")
            try shape.withUnsafeBufferPointer { dims throws(RuntimeError) in
                try ORT.check(
                    api.CreateTensorAsOrtValue!(
                        allocator, dims.baseAddress, dims.count, tensor.elementType.ort, &value),
                    "input '\(name)'")
            }
            for (index, bytes) in strings.enumerated() {
                var buffer: UnsafeMutablePointer<CChar>?
                if let status = api.GetResizedStringTensorElementBuffer!(value, index, bytes.count, &buffer) {
                    api.ReleaseValue!(value)
                    throw ORT.error(from: status, "input '\(name)' element \(index)")
                }
                if !bytes.isEmpty, let buffer {
                    bytes.withUnsafeBytes { UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                }
            }
        }
        return value!
    }

    /// A ``Tensor`` that takes ownership of the output `value`.
    private static func tensor(taking value: OpaquePointer, api: OrtApi) throws(RuntimeError) -> Tensor {
        var owned = true
        defer { if owned { api.ReleaseValue!(value) } }
        var onnxType = ONNX_TYPE_UNKNOWN
        try ORT.check(api.GetValueType!(value, &onnxType), "reading an output")
        guard onnxType == ONNX_TYPE_TENSOR else {
            throw RuntimeError(.unsupportedType, "an output is not a tensor (onnx type \(onnxType.rawValue))")
        }
        var info: OpaquePointer?
        try ORT.check(api.GetTensorTypeAndShape!(value, &info), "reading an output's shape")
        defer { api.ReleaseTensorTypeAndShapeInfo!(info) }
        var rawType = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED
        try ORT.check(api.GetTensorElementType!(info, &rawType), "reading an output's type")
        let elementType = try ElementType(ort: rawType, context: "an output")
        let shape = try dimensions(of: info!, api: api).map(Int.init)
        let count = try Tensor.elementCount(of: shape)

        if elementType == .string {
            var total = 0
            try ORT.check(api.GetStringTensorDataLength!(value, &total), "reading a string output")
            var data = [UInt8](repeating: 0, count: max(total, 1))
            var offsets = [Int](repeating: 0, count: max(count, 1))
            if count > 0 {
                try ORT.check(
                    api.GetStringTensorContent!(value, &data, total, &offsets, count), "reading a string output")
            }
            var strings: [[UInt8]] = []
            strings.reserveCapacity(count)
            for i in 0..<count {
                let end = i + 1 < count ? offsets[i + 1] : total
                strings.append(Array(data[offsets[i]..<end]))
            }
            return Tensor(elementType: .string, shape: shape, elementCount: count, content: .strings(strings))
        }
        var data: UnsafeMutableRawPointer?
        try ORT.check(api.GetTensorMutableData!(value, &data), "reading an output's data")
        owned = false
        let storage = TensorStorage(borrowing: data, byteCount: count * elementType.byteSize!, keeper: OutputValue(value, api: api))
        return Tensor(elementType: elementType, shape: shape, elementCount: count, content: .numeric(storage))
    }
}
