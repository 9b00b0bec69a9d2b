import Dispatch
import InferenceCodec
import Runtime

/// The one path of a prediction, whatever brings it (the v2 endpoint, `Daemon.predict`): route,
/// run the servable, record statistics, offer the shadow its mirror.
///
/// Hot path: one router read (a lock and a few reference counts), the servable's run on the
/// calling thread, an in-memory statistics update. No SQLite, no actor hop, no I/O.
public struct PredictionService: Sendable {
    let router: Router
    let stats: ServingStats
    /// The shadow mirror; the v2 endpoint also marks its requests as serving with it, so that
    /// mirrors run only in the gaps between inferences.
    let mirror: ShadowMirror?

    public init(router: Router, stats: ServingStats, mirror: ShadowMirror? = nil) {
        self.router = router
        self.stats = stats
        self.mirror = mirror
    }

    /// A prediction and how it was served.
    public struct Served: Sendable {
        public var prediction: Prediction
        public var version: LoadedVersion
        public var decision: RoutingDecision
        /// Queues this request's mirror for the model's shadow, when the draw chose it: to be
        /// called once the client's answer is written, so that the answer never waits for it.
        public var offerShadow: (@Sendable () -> Void)?
    }

    /// Routes and runs a prediction for `model` (pinned to `version` if given; else the split's
    /// arm for `routingKey`, else production). `started` (uptime nanoseconds) is when the request
    /// began, so that the recorded latency includes its decoding. `classify` names outputs to
    /// return as their top classes instead (output name to class count; Triton's
    /// classification extension, see `Classification`), with the servable's class names.
    public func predict(model: String, version: Int? = nil, routingKey: String? = nil, inputs: [String: Tensor], outputs: [String]? = nil,
                        classify: [String: Int] = [:], started: UInt64 = DispatchTime.now().uptimeNanoseconds) throws(RegistryError) -> Served {
        let routed: (version: LoadedVersion, decision: RoutingDecision, mirror: RoutingTable.Shadow?)
        do throws(RegistryError) {
            routed = try router.route(model: model, version: version, routingKey: routingKey)
        } catch {
            stats.reject(status: error.httpStatus)
            throw error
        }
        let loaded = routed.version
        if !classify.isEmpty {
            do throws(RegistryError) {
                // Before the run: a request that cannot be answered costs no model time.
                try PredictionService.checkClassifiable(classify, loaded.servable.signature)
            } catch {
                record(loaded, routed.decision, started, failed: false)
                throw error
            }
        }
        // The run alone is timed only for a mirrored request (the shadow report compares run times).
        let runStarted = routed.mirror == nil ? 0 : DispatchTime.now().uptimeNanoseconds
        let prediction: Prediction
        do throws(RegistryError) {
            prediction = try loaded.servable.predict(inputs, outputs: outputs, context: PredictionContext(routingKey: routingKey, classify: classify))
        } catch {
            record(loaded, routed.decision, started, failed: error.httpStatus >= 500)
            throw error
        }
        record(loaded, routed.decision, started, failed: false)
        var served = Served(prediction: prediction, version: loaded, decision: routed.decision)
        if let shadow = routed.mirror, let mirror, mirror.admit(shadow.tally) {
            // A mirror that would drop the job (paused, over budget, full) said so in `admit`,
            // with atomics alone: no job is built for it.
            let runSeconds = Double(DispatchTime.now().uptimeNanoseconds - runStarted) / 1e9
            let job = ShadowMirror.Job(shadow: shadow.version, inputs: inputs, outputNames: outputs, primary: prediction.outputs,
                                       primaryOrder: loaded.outputNames, primarySeconds: runSeconds)
            let tally = shadow.tally
            served.offerShadow = { mirror.offer(job, tally: tally) }
        }
        // After the mirror's job took the scores: a shadow is compared on what the model gave.
        for (name, count) in classify where !served.prediction.classified.contains(name) {
            guard let scores = served.prediction.outputs[name] else { continue }
            guard let classes = Classification.top(count, of: scores, labels: loaded.servable.signature.labels[name] ?? []) else {
                throw RegistryError(.modelFailure, "\(loaded.provenance): output '\(name)' came back as \(DataType(scores.elementType).rawValue), not scores")
            }
            served.prediction.outputs[name] = classes
        }
        return served
    }

    /// Refuses (400) a classification of an output whose datatype holds no scores. An output
    /// the servable does not have is left to the servable, which refuses it in its own words.
    private static func checkClassifiable(_ classify: [String: Int], _ signature: ServableSignature) throws(RegistryError) {
        for name in classify.keys.sorted() {
            guard let output = signature.outputs.first(where: { $0.name == name }), !Classification.supports(output.elementType) else { continue }
            throw RegistryError(.invalidArgument, "output '\(name)' is \(DataType(output.elementType).rawValue): a classification ranks numeric scores (INT*, UINT*, FP16, BF16, FP32, FP64)")
        }
    }

    /// Counts a request refused before it could be routed (a body that does not decode).
    public func reject(status: Int) {
        stats.reject(status: status)
    }

    private func record(_ loaded: LoadedVersion, _ decision: RoutingDecision, _ started: UInt64, failed: Bool) {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let arm: String = switch decision {
        case .pinned: "pinned"
        case .production: "production"
        case .split(let version, _): "split:\(version)"
        }
        stats.record(model: loaded.model, version: loaded.version, seconds: seconds, failed: failed, decision: arm)
    }
}
