/// The pipelines that call a model: moving its traffic must not take away what their steps use.
extension CommandDraft {
    /// Why moving `model`'s traffic reached as `selector` (`.routed` for production, a split or a
    /// rollout; `.alias(name)` for an alias) to `candidate` would break a serving pipeline: the
    /// first input a step feeds that the version does not take (or takes and is not fed), or an
    /// output a pipeline reads that it does not give. Nil when nothing breaks.
    func pipelineBreakage(model: String, to candidate: LoadedVersion, selector: PipelineSpec.ModelRef.Selector) -> String? {
        let signature = candidate.servable.signature
        let takes = Set(signature.inputs.map(\.name))
        let gives = Set(signature.outputs.map(\.name))
        for (key, version) in state.loaded.sorted(by: { $0.key < $1.key }) {
            guard let pipeline = version.servable as? PipelineServable, serves(key) else { continue }
            for step in pipeline.spec.steps where step.target.models.contains(PipelineSpec.ModelRef(model: model, selector: selector)) {
                let fed = Set(step.inputs.map(\.name))
                let name = "step '\(step.id)' of pipeline '\(key.model)' version \(key.version)"
                if let missing = fed.subtracting(takes).sorted().first {
                    return "\(candidate.provenance) has no input '\(missing)', which \(name) feeds"
                }
                if let unfed = takes.subtracting(fed).sorted().first {
                    return "\(candidate.provenance) needs input '\(unfed)', which \(name) does not feed"
                }
                if let dropped = (pipeline.needed[step.id] ?? []).first(where: { !gives.contains($0) }) {
                    return "\(candidate.provenance) has no output '\(dropped)', which \(name) uses"
                }
            }
        }
        return nil
    }

    /// Whether a pipeline version takes traffic: production, or an arm of its split.
    private func serves(_ key: VersionKey) -> Bool {
        state.isProduction(key) || state.splits[key.model]?[key.version] != nil
    }
}
