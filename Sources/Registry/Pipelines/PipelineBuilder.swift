import Runtime

/// Checks a pipeline's graph against the models that serve now, and makes its servable: a pure
/// function of the spec, the routing table and the other pipelines' specs (for cycles).
///
/// Every model a step may call must be serving (else the pipeline waits, and is checked again as
/// versions are admitted); every tensor a step consumes must exist with the datatype and rank
/// its model takes, and no pipeline may reach itself (else it fails, naming the step and the
/// tensor, or the cycle).
enum PipelineBuilder {
    enum Outcome {
        case built(PipelineServable)
        /// A model it calls has nothing serving yet: checked again later.
        case waiting(String)
        case failed(String)
    }

    struct Problem: Error {
        var waiting: Bool
        var message: String
    }

    static func build(_ spec: PipelineSpec, provenance: Provenance, table: RoutingTable, router: Router,
                      pipelines: [String: PipelineSpec], timings: PipelineTimings?) -> Outcome {
        do throws(Problem) {
            try checkCycles(spec, model: provenance.model, pipelines: pipelines)
            let signature = try check(spec, table: table)
            return .built(PipelineServable(spec: spec, signature: signature, provenance: provenance, router: router, timings: timings))
        } catch {
            return error.waiting ? .waiting(error.message) : .failed(error.message)
        }
    }

    /// The versions a reference may reach now: production and the split's arms, the pinned
    /// version, or the alias's.
    static func candidates(_ ref: PipelineSpec.ModelRef, step: String, table: RoutingTable) throws(Problem) -> [LoadedVersion] {
        guard let routes = table.models[ref.model] else {
            throw Problem(waiting: true, message: "waiting for model '\(ref.model)' (step '\(step)'): it has no version yet")
        }
        func pinned(_ version: Int) throws(Problem) -> [LoadedVersion] {
            if let loaded = routes.versions[version] { return [loaded] }
            if let state = routes.known[version], [.failed, .quarantined].contains(state) {
                throw Problem(waiting: false, message: "step '\(step)' calls model '\(ref.model)' version \(version), which is \(state.rawValue)")
            }
            throw Problem(waiting: true, message: "waiting for model '\(ref.model)' version \(version) (step '\(step)') to be loaded")
        }
        switch ref.selector {
        case .routed:
            let versions = (routes.production.map { [$0] } ?? []) + (routes.arms ?? []).map(\.version)
            guard !versions.isEmpty else {
                throw Problem(waiting: true, message: "waiting for model '\(ref.model)' (step '\(step)'): it has no production version serving")
            }
            return versions
        case .version(let version):
            return try pinned(version)
        case .alias(let alias):
            guard let version = routes.aliases[alias] else {
                throw Problem(waiting: true, message: "waiting for model '\(ref.model)' (step '\(step)'): it has no alias '\(alias)'")
            }
            return try pinned(version)
        }
    }

    /// A pipeline that reaches its own model through the pipelines it calls.
    static func checkCycles(_ spec: PipelineSpec, model: String, pipelines: [String: PipelineSpec]) throws(Problem) {
        func walk(_ spec: PipelineSpec, path: [String]) throws(Problem) {
            for ref in spec.models {
                if ref.model == model {
                    throw Problem(waiting: false, message: "cycle: \((path + [ref.model]).joined(separator: " -> "))")
                }
                guard !path.contains(ref.model), let inner = pipelines[ref.model] else { continue }
                try walk(inner, path: path + [ref.model])
            }
        }
        try walk(spec, path: [model])
    }

    /// Checks every step's tensors; returns the pipeline's signature.
    static func check(_ spec: PipelineSpec, table: RoutingTable) throws(Problem) -> ServableSignature {
        var requestTypes: [String: (info: TensorInfo, step: String)] = [:]
        var stepOutputs: [String: [String: [TensorInfo]]] = [:]
        var stepLabels: [String: [String: [[String]]]] = [:]
        for step in spec.steps {
            var versions: [LoadedVersion] = []
            for ref in step.target.models { versions += try candidates(ref, step: step.id, table: table) }
            if case .choose(let on, _, _) = step.target {
                for info in try produced(on, by: stepOutputs, for: "step '\(step.id)' switch") {
                    let perRow = info.shape.count == 1 || (info.shape.count == 2 && info.shape[1] == .fixed(1))
                    guard perRow, ![.float, .double, .float16, .bfloat16].contains(info.elementType) else {
                        throw Problem(waiting: false, message: "step '\(step.id)' switches on '\(on)', which is \(info.elementType) [\(info.shape.map(\.description).joined(separator: ", "))]: a switch needs one integer, boolean or string per row")
                    }
                }
            }
            for version in versions {
                let signature = version.servable.signature
                let fed = Set(step.inputs.map(\.name))
                let takes = Set(signature.inputs.map(\.name))
                guard fed == takes else {
                    throw Problem(waiting: false, message: "step '\(step.id)': \(version.provenance) takes inputs \(takes.sorted()), the step feeds \(fed.sorted())")
                }
                for (name, source) in step.inputs {
                    let wants = signature.inputs.first { $0.name == name }!
                    switch source {
                    case .request(let request):
                        if let earlier = requestTypes[request] {
                            guard earlier.info.elementType == wants.elementType, earlier.info.shape.count == wants.shape.count else {
                                throw Problem(waiting: false, message: "request input '\(request)' feeds step '\(earlier.step)' as \(earlier.info.elementType) rank \(earlier.info.shape.count) and step '\(step.id)' (\(version.provenance) input '\(name)') as \(wants.elementType) rank \(wants.shape.count)")
                            }
                        } else {
                            requestTypes[request] = (TensorInfo(name: request, elementType: wants.elementType, shape: wants.shape), step.id)
                        }
                    case .step(let ref):
                        for info in try produced(ref, by: stepOutputs, for: "step '\(step.id)' input '\(name)'") {
                            guard info.elementType == wants.elementType, info.shape.count == wants.shape.count else {
                                throw Problem(waiting: false, message: "step '\(step.id)' input '\(name)' reads '\(ref)', which is \(info.elementType) rank \(info.shape.count); \(version.provenance) takes \(wants.elementType) rank \(wants.shape.count)")
                            }
                        }
                    }
                }
            }
            // What the step gives: the outputs every model it may call has.
            var outputs: [String: [TensorInfo]] = [:]
            var labels: [String: [[String]]] = [:]
            for name in Set(versions.flatMap { $0.servable.signature.outputs.map(\.name) }) {
                let infos = versions.compactMap { $0.servable.signature.outputs.first { $0.name == name } }
                guard infos.count == versions.count else { continue }
                outputs[name] = infos
                labels[name] = versions.map { $0.servable.signature.labels[name] ?? [] }
            }
            stepOutputs[step.id] = outputs
            stepLabels[step.id] = labels
        }
        var outputs: [TensorInfo] = []
        var labels: [String: [String]] = [:]
        for (name, ref) in spec.outputs {
            let infos = try produced(ref, by: stepOutputs, for: "output '\(name)'")
            guard Set(infos.map(\.elementType)).count == 1 else {
                throw Problem(waiting: false, message: "output '\(name)' reads '\(ref)', whose models give it as \(Set(infos.map { "\($0.elementType)" }).sorted().joined(separator: " and "))")
            }
            // A dimension that differs between the models a switch may call is variable.
            let rank = infos.map(\.shape.count).max() ?? 0
            let shape: [TensorInfo.Dimension] = (0..<rank).map { index in
                let dims = Set(infos.map { index < $0.shape.count ? $0.shape[index].value : -2 })
                return dims.count == 1 && dims.first! >= 0 ? .fixed(dims.first!) : .variable(name: nil)
            }
            outputs.append(TensorInfo(name: name, elementType: infos[0].elementType, shape: shape))
            if let all = stepLabels[ref.step]?[ref.output], let first = all.first, !first.isEmpty, all.allSatisfy({ $0 == first }) {
                labels[name] = first
            }
        }
        let inputs = requestTypes.keys.sorted().map { requestTypes[$0]!.info }
        return ServableSignature(inputs: inputs, outputs: outputs, labels: labels)
    }

    /// The declarations of `ref` by every model its step may call.
    private static func produced(_ ref: PipelineSpec.TensorRef, by stepOutputs: [String: [String: [TensorInfo]]], for use: String) throws(Problem) -> [TensorInfo] {
        guard let infos = stepOutputs[ref.step]?[ref.output] else {
            let known = stepOutputs[ref.step].map { $0.keys.sorted().joined(separator: ", ") } ?? ""
            throw Problem(waiting: false, message: "\(use) reads '\(ref)': not every model of step '\(ref.step)' gives output '\(ref.output)' (they all give: \(known))")
        }
        return infos
    }
}
