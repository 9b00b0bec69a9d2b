/// Routes: weighted splits and shadows, each stored as the model's route spec.
extension CommandDraft {
    /// `split`: sets a weighted split of the model's unpinned traffic (version to percent,
    /// summing to 100), or ends it (`weights` nil). Every version in it must be loaded.
    mutating func setSplit(model: String, weights: [Int: Int]?, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        guard state.knows(model: model) else { throw RegistryError(.notFound, "model '\(model)' not found") }
        let previous = state.splits[model]
        if let active = state.rollouts[model], active.state.isActive {
            throw RegistryError(.conflict, "a rollout of version \(active.version) controls model '\(model)''s split; pause or abort it first")
        }
        guard let weights else {
            guard previous != nil else { throw RegistryError(.notFound, "model '\(model)' has no split in force") }
            reported = endSplit(model: model, actor: actor, reason: reason)
            return CommandOutcome(version: state.production(of: model), previous: nil,
                                  message: "model '\(model)': split ended; production serves all unpinned traffic")
        }
        if let problem = TrafficSplit.validate(weights) { throw RegistryError(.invalidArgument, problem) }
        for version in weights.keys.sorted() {
            let key = try state.existingKey(model: model, version: version)
            guard let candidate = state.loaded[key] else {
                throw RegistryError(.conflict, "model '\(model)' version \(version) is \(state.records[key]!.state.rawValue), not loaded; a split needs loaded versions")
            }
            if weights[version]! > 0, let breakage = pipelineBreakage(model: model, to: candidate, selector: .routed) {
                throw RegistryError(.conflict, "model '\(model)' version \(version) cannot take a share of the traffic: it would break a pipeline: \(breakage)")
            }
        }
        let description = RouteSpec.describe(weights)
        reported = write(.setRoute(model: model, spec: RouteSpec(split: weights, shadow: state.shadows[model]).text, states: [],
                                   event: EventDraft(actor: actor, action: "split", model: model, version: nil,
                                                     before: previous.map(RouteSpec.describe), after: description, reason: reason)))
        state.splits[model] = weights
        return CommandOutcome(version: nil, previous: nil, message: "model '\(model)': traffic split \(description)")
    }

    /// Ends a model's split, if any, recording it. Returns the write that carries the event.
    @discardableResult
    mutating func endSplit(model: String, actor: String, reason: String) -> Int? {
        guard let previous = state.splits[model] else { return nil }
        let index = write(.setRoute(model: model, spec: RouteSpec(split: nil, shadow: state.shadows[model]).text, states: [],
                                    event: EventDraft(actor: actor, action: "split", model: model, version: nil,
                                                      before: RouteSpec.describe(previous), after: nil, reason: reason)))
        state.splits[model] = nil
        return index
    }

    /// `shadow`: mirrors `percent` of the model's routed requests to `version`, off the client's
    /// path, or ends the shadow (`version` nil). The version must be loaded, must not be
    /// production, and must accept production's inputs; it is marked `shadow` while mirrored.
    mutating func setShadow(model: String, version: Int?, percent: Int, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        guard state.knows(model: model) else { throw RegistryError(.notFound, "model '\(model)' not found") }
        guard let version else {
            guard state.shadows[model] != nil else { throw RegistryError(.notFound, "model '\(model)' has no shadow in force") }
            reported = endShadow(model: model, actor: actor, reason: reason)
            return CommandOutcome(version: nil, previous: nil, message: "model '\(model)': shadow ended")
        }
        guard (1...100).contains(percent) else {
            throw RegistryError(.invalidArgument, "shadow percent \(percent) is outside 1...100")
        }
        let key = try state.existingKey(model: model, version: version)
        guard let candidate = state.loaded[key], state.records[key]!.state.isServable else {
            throw RegistryError(.conflict, "model '\(model)' version \(version) is \(state.records[key]!.state.rawValue), not loaded; a shadow needs a loaded version")
        }
        let production = state.production(of: model)
        if production == version {
            throw RegistryError(.conflict, "model '\(model)' version \(version) is production: it already answers the requests a shadow would mirror")
        }
        if let production, let current = state.loaded[VersionKey(model: model, version: production)],
           let mismatch = SignatureCompatibility.mismatch(current: current.servable.signature.inputs, candidate: candidate.servable.signature.inputs) {
            throw RegistryError(.conflict, "model '\(model)' version \(version) cannot shadow production version \(production): \(mismatch)")
        }
        let previous = state.shadows[model]
        var states: [StateChange] = []
        if let previous, previous.version != version, state.records[VersionKey(model: model, version: previous.version)]?.state == .shadow {
            states.append(StateChange(previous.version, .ready, "no longer the shadow (version \(version) is)"))
        }
        if [.ready, .candidate].contains(state.records[key]!.state) {
            states.append(StateChange(version, .shadow, "mirroring \(percent)% of requests"))
        }
        let spec = ShadowSpec(version: version, percent: percent)
        reported = write(.setRoute(model: model, spec: RouteSpec(split: state.splits[model], shadow: spec).text, states: states,
                                   event: EventDraft(actor: actor, action: "shadow", model: model, version: version,
                                                     before: previous?.description, after: spec.description, reason: reason)))
        setStates(states, model: model)
        state.shadows[model] = spec
        effect(.configureMirror(model: model, spec))
        return CommandOutcome(version: version, previous: previous?.version,
                              message: "model '\(model)': \(percent)% of requests mirrored to version \(version)")
    }

    /// Ends a model's shadow, if any, recording it. Returns the write that carries the event.
    @discardableResult
    mutating func endShadow(model: String, actor: String, reason: String) -> Int? {
        guard let previous = state.shadows[model] else { return nil }
        var states: [StateChange] = []
        if state.records[VersionKey(model: model, version: previous.version)]?.state == .shadow {
            states.append(StateChange(previous.version, .ready, "shadow ended"))
        }
        let index = write(.setRoute(model: model, spec: RouteSpec(split: state.splits[model], shadow: nil).text, states: states,
                                    event: EventDraft(actor: actor, action: "shadow", model: model, version: previous.version,
                                                      before: previous.description, after: nil, reason: reason)))
        setStates(states, model: model)
        state.shadows[model] = nil
        effect(.configureMirror(model: model, nil))
        return index
    }
}
