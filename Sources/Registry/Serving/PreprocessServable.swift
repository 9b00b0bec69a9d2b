import Runtime

/// A servable whose inputs are taken in their raw form (the manifest's `preprocess`): clients
/// send, say, UINT8 pixels in NHWC, and each such input is made into what the model takes
/// (FP32, scaled, normalised per channel, channels reversed if declared, laid out as NCHW) before
/// the base runs. The normalisation travels with the version, so no client can apply another.
///
/// Its signature is the base's with each contracted input replaced by its raw form (datatype and
/// layout as declared, the model's own dimensions); outputs and class names are the base's.
///
/// Invariants (checked by ``contracts(_:inputs:)`` before one is made): every contract names
/// an input of the base and fits it (`InputContract`).
///
/// Thread-safety: immutable; `predict` calls the base's, which may be called from many threads.
public final class PreprocessServable: Servable {
    public let base: any Servable
    public let signature: ServableSignature
    /// By input name.
    let contracts: [String: InputContract]

    /// Wraps `base` with `preprocess` (by input name), after ``contracts(_:inputs:)``.
    public init(base: any Servable, preprocess: [String: Manifest.Preprocess]) throws(RegistryError) {
        let contracts = try PreprocessServable.contracts(preprocess, inputs: base.signature.inputs)
        self.base = base
        self.contracts = contracts
        let inputs = base.signature.inputs.map { contracts[$0.name]?.raw ?? $0 }
        self.signature = ServableSignature(inputs: inputs, outputs: base.signature.outputs, labels: base.signature.labels)
    }

    public var runsOnCallingThread: Bool { base.runsOnCallingThread }

    /// Checks `preprocess` against the inputs of the model it feeds; every error names the
    /// manifest key (`preprocess.image.mean`). The loader calls it too, so that a contract that
    /// does not fit fails the version before its warm-up.
    static func contracts(_ preprocess: [String: Manifest.Preprocess], inputs: [TensorInfo]) throws(RegistryError) -> [String: InputContract] {
        var contracts: [String: InputContract] = [:]
        for name in preprocess.keys.sorted() {
            guard let input = inputs.first(where: { $0.name == name }) else {
                throw RegistryError(.invalidConfiguration, "manifest key 'preprocess.\(name)': the model has no input '\(name)' (inputs: \(inputs.map(\.name).joined(separator: ", ")))")
            }
            contracts[name] = try InputContract(preprocess[name]!, for: input)
        }
        return contracts
    }

    /// `inputs` with each contracted input made into the model's form; other inputs unchanged.
    /// A contracted input that is missing is left for the base to refuse, in its words.
    static func prepare(_ inputs: [String: Tensor], _ contracts: [String: InputContract]) throws(RegistryError) -> [String: Tensor] {
        var prepared = inputs
        for (name, contract) in contracts {
            guard let raw = inputs[name] else { continue }
            prepared[name] = try contract.apply(raw)
        }
        return prepared
    }

    public func predict(_ inputs: [String: Tensor], outputs: [String]?, context: PredictionContext) throws(RegistryError) -> Prediction {
        try base.predict(PreprocessServable.prepare(inputs, contracts), outputs: outputs, context: context)
    }
}
