import Runtime
import Wire

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
    func predict(_ inputs: [String: Tensor], outputs: [String]?, context: PredictionContext) throws(RegistryError) -> Prediction
}

extension Servable {
    /// A prediction with no routing key, at the top level.
    public func predict(_ inputs: [String: Tensor], outputs: [String]?) throws(RegistryError) -> Prediction {
        try predict(inputs, outputs: outputs, context: PredictionContext())
    }
}

/// What a prediction carries besides its tensors, for the servables inside a composite.
public struct PredictionContext: Sendable {
    /// The request's routing key: a pipeline's steps route their models with it, so a sticky
    /// split stays sticky through the pipeline.
    public var routingKey: String?
    /// How many pipelines this prediction runs inside (a pipeline may call a pipeline): bounded
    /// by ``maximumDepth`` so that a cycle made after admission cannot recurse without end.
    public var depth = 0
    /// Outputs asked for as their top classes (name to class count), for a servable that
    /// classifies inside (a pipeline); others leave it to ``PredictionService``.
    public var classify: [String: Int] = [:]

    public static let maximumDepth = 8

    public init(routingKey: String? = nil, depth: Int = 0, classify: [String: Int] = [:]) {
        self.routingKey = routingKey
        self.depth = depth
        self.classify = classify
    }
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
    public var steps: [PredictionStep]

    /// The outputs this servable already gave as their top classes (a pipeline classifies each
    /// part of a split with the class names of the model that answered it).
    public var classified: Set<String> = []

    public init(outputs: [String: Tensor], steps: [PredictionStep] = []) {
        self.outputs = outputs
        self.steps = steps
    }
}

/// One step of a composite's prediction: which version answered which of its rows, and how it
/// was routed there.
public struct PredictionStep: Sendable, Equatable {
    /// The step's id in the pipeline (a nested pipeline's steps are `outer/inner`).
    public var step: String
    public var provenance: Provenance
    public var routing: RoutingDecision
    /// How many of the request's rows it answered (a `switch` splits them between models).
    public var rows: Int

    public init(step: String, provenance: Provenance, routing: RoutingDecision, rows: Int) {
        self.step = step
        self.provenance = provenance
        self.routing = routing
        self.rows = rows
    }
}

extension PredictionStep {
    /// The steps as a JSON array (`[{"step":…,"model":…,"version":N,"sha256":…,"routing":…,"rows":N}, …]`)
    /// written as a JSON string literal, the value of a v2 response's `steps` parameter (v2
    /// parameters are scalars), as bytes in one pass: the array's own quotes written escaped, and each field
    /// escaped twice only when it holds a character that needs it (step ids, model names,
    /// digests and routing words never do). Escaping the whole text again cost more than the
    /// two steps' hop (BENCHMARKS.md, pipelines).
    public static func jsonStringLiteral(_ steps: [PredictionStep]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(200 * steps.count + 4)
        func text(_ value: String) {
            out += Array(#"\""#.utf8)
            if value.utf8.contains(where: { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 || $0 == 0x7F }) {
                // Escaped for the inner JSON, then as part of the outer string.
                let inner = JSONText.quoted(value)
                let outer = JSONText.quoted(String(inner.dropFirst().dropLast()))
                out += Array(outer.dropFirst().dropLast().utf8)
            } else {
                out += Array(value.utf8)
            }
            out += Array(#"\""#.utf8)
        }
        out.append(0x22)
        out.append(0x5B)
        for (index, step) in steps.enumerated() {
            if index > 0 { out.append(0x2C) }
            out += Array(#"{\"step\":"#.utf8)
            text(step.step)
            out += Array(#",\"model\":"#.utf8)
            text(step.provenance.model)
            out += Array(#",\"version\":\#(step.provenance.version),\"sha256\":"#.utf8)
            text(step.provenance.sha256)
            out += Array(#",\"routing\":"#.utf8)
            text(step.routing.description)
            out += Array(#",\"rows\":\#(step.rows)}"#.utf8)
        }
        out.append(0x5D)
        out.append(0x22)
        return out
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
