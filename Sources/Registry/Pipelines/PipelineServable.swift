import Dispatch
import InferenceCodec
import Runtime

/// A pipeline version at work: its steps run in order on the calling thread, each step's model
/// resolved at request time through the routing table (its production, split or rollout, with
/// the request's routing key; or the pinned version or alias), so that a pipeline follows every
/// promotion, rollback and split of the models it calls without being reloaded.
///
/// A `switch` step splits the request's rows by the model that takes each, runs each model on
/// its rows, and puts the answers back in row order. Immutable after init, hence `Sendable`.
public final class PipelineServable: Servable {
    public let spec: PipelineSpec
    public let signature: ServableSignature
    public let provenance: Provenance
    let router: Router
    /// Per step, the outputs later steps, switches and the pipeline's outputs read (only those
    /// are asked of its model).
    let needed: [String: [String]]
    /// Time spent in each step and the pipeline's own overhead, for /metrics.
    let timings: PipelineTimings?
    /// The spec's request inputs, computed once (every request checks them).
    let requestInputs: [String]
    let requestInputSet: Set<String>

    /// The steps may use ONNX Runtime's shared pool: their CPU time is not all on this thread.
    public var runsOnCallingThread: Bool { false }

    init(spec: PipelineSpec, signature: ServableSignature, provenance: Provenance, router: Router, timings: PipelineTimings?) {
        self.spec = spec
        self.signature = signature
        self.provenance = provenance
        self.router = router
        self.timings = timings
        self.requestInputs = spec.requestInputs
        self.requestInputSet = Set(requestInputs)
        var needed: [String: Set<String>] = [:]
        for step in spec.steps {
            for (_, source) in step.inputs { if case .step(let ref) = source { needed[ref.step, default: []].insert(ref.output) } }
            if case .choose(let on, _, _) = step.target { needed[on.step, default: []].insert(on.output) }
        }
        for (_, ref) in spec.outputs { needed[ref.step, default: []].insert(ref.output) }
        self.needed = needed.mapValues { $0.sorted() }
    }

    public func predict(_ inputs: [String: Tensor], outputs wanted: [String]?, context: PredictionContext) throws(RegistryError) -> Prediction {
        guard context.depth < PredictionContext.maximumDepth else {
            throw RegistryError(.modelFailure, "\(provenance): pipelines nested more than \(PredictionContext.maximumDepth) deep (a pipeline that calls itself through others)")
        }
        let started = DispatchTime.now().uptimeNanoseconds
        var stepSeconds = 0.0
        for name in requestInputs where inputs[name] == nil {
            throw RegistryError(.invalidArgument, "pipeline '\(provenance.model)' needs input '\(name)'")
        }
        if inputs.count != requestInputs.count, let extra = inputs.keys.sorted().first(where: { !requestInputSet.contains($0) }) {
            throw RegistryError(.invalidArgument, "pipeline '\(provenance.model)' has no input '\(extra)' (its inputs: \(requestInputs.joined(separator: ", ")))")
        }
        let inner = PredictionContext(routingKey: context.routingKey, depth: context.depth + 1)
        var results: [String: StepResult] = [:]
        var steps: [PredictionStep] = []
        for step in spec.steps {
            var stepInputs: [String: Tensor] = [:]
            for (name, source) in step.inputs {
                switch source {
                case .request(let request): stepInputs[name] = inputs[request]!
                case .step(let ref): stepInputs[name] = try results[ref.step]!.tensor(ref.output, for: "step '\(step.id)' input '\(name)'")
                }
            }
            let stepStarted = DispatchTime.now().uptimeNanoseconds
            let result: StepResult
            switch step.target {
            case .model(let ref):
                let (version, decision) = try resolve(ref, step: step.id, routingKey: context.routingKey)
                let answer = try run(version, step: step.id, stepInputs, needed[step.id] ?? [], inner)
                result = StepResult(parts: [StepResult.Part(version: version, rows: nil, outputs: answer.outputs)])
                steps.append(PredictionStep(step: step.id, provenance: version.provenance, routing: decision, rows: stepInputs.values.first?.rowCount ?? 1))
                steps += answer.steps.map { nested in var n = nested; n.step = "\(step.id)/\(n.step)"; return n }
            case .choose(let on, let cases, let fallback):
                let values = try results[on.step]!.tensor(on.output, for: "step '\(step.id)' switch")
                (result, steps) = try choose(step: step, on: on, values: values, cases: cases, fallback: fallback, stepInputs, inner, context, steps)
            }
            results[step.id] = result
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - stepStarted) / 1e9
            stepSeconds += seconds
            timings?.record(step: step.id, seconds: seconds)
        }
        var prediction = Prediction(outputs: [:], steps: steps)
        for (name, ref) in spec.outputs where wanted?.contains(name) ?? true {
            let result = results[ref.step]!
            if let count = context.classify[name] {
                // Classified part by part, with the labels of the model that answered those
                // rows: every part then has the same shape, whatever its model's class count.
                prediction.outputs[name] = try result.classified(ref.output, count: count, output: name, pipeline: provenance)
                prediction.classified.insert(name)
            } else {
                prediction.outputs[name] = try result.tensor(ref.output, for: "output '\(name)'")
            }
        }
        timings?.record(overhead: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 - stepSeconds)
        return prediction
    }

    /// The model version a reference names now, and how it was reached.
    func resolve(_ ref: PipelineSpec.ModelRef, step: String, routingKey: String?) throws(RegistryError) -> (LoadedVersion, RoutingDecision) {
        do throws(RegistryError) {
            switch ref.selector {
            case .routed:
                return try router.resolve(model: ref.model, routingKey: routingKey)
            case .version(let version):
                return try router.resolve(model: ref.model, version: version)
            case .alias(let alias):
                guard let version = router.current.models[ref.model]?.aliases[alias] else {
                    throw RegistryError(.unavailable, "model '\(ref.model)' has no alias '\(alias)'")
                }
                return try router.resolve(model: ref.model, version: version)
            }
        } catch {
            // A model that cannot answer now is the pipeline's 503, named by its step.
            let code: RegistryError.Code = error.code == .invalidArgument ? .invalidArgument : .unavailable
            throw RegistryError(code, "\(provenance), step '\(step)': \(error.message)")
        }
    }

    private func run(_ version: LoadedVersion, step: String, _ inputs: [String: Tensor], _ asked: [String], _ context: PredictionContext)
        throws(RegistryError) -> Prediction
    {
        let answer: Prediction
        do throws(RegistryError) {
            answer = try version.servable.predict(inputs, outputs: asked, context: context)
        } catch {
            throw RegistryError(error.code, "\(provenance), step '\(step)': \(error.message)")
        }
        if let missing = asked.first(where: { answer.outputs[$0] == nil }) {
            throw RegistryError(.modelFailure, "\(provenance), step '\(step)': \(version.provenance) gave no output '\(missing)'")
        }
        return answer
    }
}
