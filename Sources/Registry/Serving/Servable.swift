import Runtime

/// Something that answers a prediction: one ONNX version today; a pipeline, a batcher or a cache
/// is another kind (a composite of servables, or a wrapper around one).
///
/// The routing table holds servables (through ``LoadedVersion``), never sessions, so nothing
/// above this seam knows what runs a prediction.
///
/// Thread-safety: `predict` may be called from many threads at once. It blocks its thread for
/// the length of the computation: call it on threads you own, never on Swift's cooperative pool.
public protocol Servable: AnyObject, Sendable {
    /// The inputs it takes and the outputs it gives, in their declared order.
    var signature: ServableSignature { get }
    /// Whether a prediction does all its work on the calling thread, so that the thread's CPU
    /// time measures its cost (the shadow mirror's budget relies on this).
    var runsOnCallingThread: Bool { get }
    /// Runs a prediction. `outputs` names the outputs wanted (all when nil). Errors carry the code
    /// that decides their HTTP status (`RegistryError.httpStatus`): `.invalidArgument` for inputs
    /// that do not fit the signature, `.unavailable` for a part that cannot serve now,
    /// `.modelFailure` for a failure inside the model.
    func predict(_ inputs: [String: Tensor], outputs: [String]?) throws(RegistryError) -> Prediction
}

/// What a servable takes and gives.
public struct ServableSignature: Sendable, Equatable {
    public var inputs: [TensorInfo]
    public var outputs: [TensorInfo]
    /// Class names per output, by output name: `labels[o][i]` names class `i` of output `o`
    /// (what a classification appends to an index). An output may have none, or fewer names
    /// than classes; unnamed classes are written without a label.
    public var labels: [String: [String]]

    public init(inputs: [TensorInfo], outputs: [TensorInfo], labels: [String: [String]] = [:]) {
        self.inputs = inputs
        self.outputs = outputs
        self.labels = labels
    }
}

/// A prediction's answer, with who gave it.
public struct Prediction: Sendable {
    public var outputs: [String: Tensor]
    /// The versions inside this servable that answered, in the order they ran (a composite's
    /// parts); empty for a servable that is one model, whose own identity is the provenance.
    public var steps: [Provenance]

    public init(outputs: [String: Tensor], steps: [Provenance] = []) {
        self.outputs = outputs
        self.steps = steps
    }
}

/// Which artifact answered: the model, its version and the SHA-256 of the admitted bytes.
public struct Provenance: Sendable, Equatable, CustomStringConvertible {
    public var model: String
    public var version: Int
    public var sha256: String

    public init(model: String, version: Int, sha256: String) {
        self.model = model
        self.version = version
        self.sha256 = sha256
    }

    public var description: String { "model '\(model)' version \(version)" }
}
