/// Production and the other aliases: `promote`, `alias`, a rollback's switch, and a newly loaded
/// version that the admission policy puts to work.
extension CommandDraft {
    /// `promote`: makes `version` production. It must be loaded and servable, and its inputs
    /// compatible with the current production's (same names, element types and ranks) unless
    /// `force`. A split in force is ended: promotion sends all unpinned traffic to one version.
    mutating func promote(model: String, version: Int, force: Bool, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        let key = try state.existingKey(model: model, version: version)
        let record = state.records[key]!
        guard let candidate = state.loaded[key], record.state.isServable else {
            let why = record.reason.isEmpty ? "" : " (\(record.reason))"
            throw RegistryError(.conflict, "model '\(model)' version \(version) is \(record.state.rawValue)\(why); only a ready, loaded version can be promoted")
        }
        let previous = state.production(of: model)
        if previous == version && state.splits[model] == nil {
            throw RegistryError(.conflict, "model '\(model)' version \(version) is already production")
        }
        var outcome = CommandOutcome(version: version, previous: previous, message: "")
        // What --force overrides, each recorded in the event: a pipeline the version would
        // break (named first), and production's clients whose inputs it would not take.
        var overridden: [String] = []
        if let breakage = pipelineBreakage(model: model, to: candidate, selector: .routed) {
            guard force else {
                throw RegistryError(.conflict, "model '\(model)' version \(version) would break a pipeline: \(breakage); use --force to promote anyway")
            }
            overridden.append("breaking a pipeline (\(breakage))")
        }
        if let previous, previous != version, let current = state.loaded[VersionKey(model: model, version: previous)],
           let mismatch = SignatureCompatibility.mismatch(current: current.servable.signature.inputs, candidate: candidate.servable.signature.inputs) {
            guard force else {
                throw RegistryError(.conflict, "model '\(model)' version \(version) is not compatible with production version \(previous): \(mismatch); use --force to promote anyway")
            }
            overridden.append("incompatible signature (\(mismatch))")
        }
        outcome.forced = !overridden.isEmpty
        let eventReason = overridden.isEmpty ? reason
            : "FORCED despite " + overridden.joined(separator: " and ") + (reason.isEmpty ? "" : ": \(reason)")
        supersedeRollout(model: model, actor: actor, by: "promote")
        endSplit(model: model, actor: actor, reason: "ended by the promotion of version \(version)")
        if state.shadows[model]?.version == version {
            endShadow(model: model, actor: actor, reason: "ended by the promotion of version \(version)")
        }
        reported = try makeProduction(key, actor: actor, reason: eventReason)
        outcome.message = previous.map { "model '\(model)': production is now version \(version) (was \($0))" }
            ?? "model '\(model)': production is now version \(version)"
        if outcome.forced {
            let what = overridden.map { $0.hasPrefix("breaking") ? "breaking a pipeline" : "an incompatible signature" }
            outcome.message += "; forced despite " + what.joined(separator: " and ") + " (recorded)"
        }
        return outcome
    }

    /// The switch of a rollback whose target is loaded: the rollout and the split give way, and
    /// production moves. `current` is the production the command found when it started.
    mutating func rollback(to key: VersionKey, loadedFirst: Bool, force: Bool, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        // Checked again: another command may have moved production while the target loaded.
        let (checked, current) = try state.rollbackTarget(model: key.model, to: key.version)
        guard let target = state.loaded[checked] else {
            throw RegistryError(.conflict, "model '\(key.model)' version \(key.version) was unloaded while it was being loaded for the rollback; retry")
        }
        var outcome = CommandOutcome(version: key.version, previous: current, message: "")
        outcome.loadedFirst = loadedFirst
        var reason = reason
        if let breakage = pipelineBreakage(model: key.model, to: target, selector: .routed) {
            guard force else {
                throw RegistryError(.conflict, "model '\(key.model)' version \(key.version) would break a pipeline: \(breakage); use --force to roll back anyway")
            }
            outcome.forced = true
            reason = "FORCED despite breaking a pipeline (\(breakage))" + (reason.isEmpty ? "" : ": \(reason)")
        }
        supersedeRollout(model: key.model, actor: actor, by: "rollback")
        endSplit(model: key.model, actor: actor, reason: "ended by a rollback to version \(key.version)")
        reported = try makeProduction(key, actor: actor, reason: reason, action: "rollback")
        outcome.message = "model '\(key.model)': rolled back to version \(key.version) (was \(current))"
            + (loadedFirst ? "; version \(key.version) was not loaded and was loaded first" : "")
            + (outcome.forced ? "; forced despite breaking a pipeline (recorded)" : "")
        return outcome
    }

    /// `alias`: points a non-production alias at a version, or removes it (`version` nil).
    mutating func setAlias(model: String, alias: String, version: Int?, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        guard Lifecycle.isValidAlias(alias) else {
            throw RegistryError(.invalidArgument, "alias '\(alias)' is not valid: use 1-64 of a-z, 0-9, '-', '_', starting with a letter")
        }
        guard state.knows(model: model) else { throw RegistryError(.notFound, "model '\(model)' not found") }
        let previous = state.aliases[model]?[alias]
        if alias == "production" {
            guard let version else {
                throw RegistryError(.conflict, "the production alias cannot be removed; promote or roll back instead")
            }
            _ = try state.existingKey(model: model, version: version)
            throw RegistryError(.conflict, "set production with 'promote' (it checks the signature) or 'rollback'")
        }
        guard let version else {
            guard let previous else { throw RegistryError(.notFound, "model '\(model)' has no alias '\(alias)'") }
            // A version that was `candidate` only by this alias is plain `ready` again.
            let states = alias == "candidate" && state.records[VersionKey(model: model, version: previous)]?.state == .candidate
                ? [StateChange(previous, .ready, "the candidate alias was removed")] : []
            reported = write(.setAlias(model: model, alias: alias, version: nil, states: states,
                                       event: EventDraft(actor: actor, action: "alias", model: model, version: previous,
                                                         before: "\(alias)=\(previous)", after: nil, reason: reason)))
            state.aliases[model]?[alias] = nil
            setStates(states, model: model)
            retire(model: model)
            return CommandOutcome(version: nil, previous: previous, message: "model '\(model)': alias '\(alias)' removed (was version \(previous))")
        }
        let key = try state.existingKey(model: model, version: version)
        if let current = state.records[key]?.state, !current.isServable && current != .retired {
            throw RegistryError(.conflict, "model '\(model)' version \(version) is \(current.rawValue); an alias must point at a version that can serve")
        }
        if let candidate = state.loaded[key], let breakage = pipelineBreakage(model: model, to: candidate, selector: .alias(alias)) {
            throw RegistryError(.conflict, "alias '\(alias)' of model '\(model)' cannot move to version \(version): it would break a pipeline: \(breakage)")
        }
        reported = pointAlias(model: model, alias: alias, version: version, actor: actor, reason: reason)
        return CommandOutcome(version: version, previous: previous, message: "model '\(model)': alias '\(alias)' -> version \(version)")
    }

    /// A newly loaded version goes into service as `ready`, and the admission policy's outcome
    /// (production, candidate, or neither) is recorded with it.
    mutating func admitLoaded(_ key: VersionKey, _ record: VersionRecord, _ version: LoadedVersion, outcome: AdmissionPolicy.Outcome,
                              hadProduction: Bool, event: EventDraft) throws(RegistryError) {
        install(key, version)
        var outcome = outcome
        var record = record
        if outcome == .promote, hadProduction, let breakage = pipelineBreakage(model: key.model, to: version, selector: .routed) {
            // The policy would move production under a pipeline that cannot use this version:
            // it stays ready, saying why; an operator may still `promote --force`.
            outcome = .ready
            record.reason = "not made production by on_new_version=live: it would break a pipeline: \(breakage)"
            log(.warning, "new version not made production: it would break a pipeline", [("model.name", key.model), ("model.version", String(key.version)), ("detail", breakage)])
        }
        save(record, event: event)
        switch outcome {
        case .promote:
            _ = try makeProduction(key, actor: EventDraft.daemon, reason: hadProduction ? "policy on_new_version=live" : "first version of the model")
        case .candidate:
            pointAlias(model: key.model, alias: "candidate", version: key.version, actor: EventDraft.daemon, reason: "policy on_new_version=candidate")
        case .ready:
            break
        }
    }

    /// Makes `key` the production version; the previous production stays loaded as the
    /// retention policy says. Returns the write that carries the event.
    mutating func makeProduction(_ key: VersionKey, actor: String, reason: String, action: String = "promote") throws(RegistryError) -> Int {
        guard state.loaded[key] != nil else {
            throw RegistryError(.unavailable, "model '\(key.model)' version \(key.version) is not loaded")
        }
        let previous = state.production(of: key.model)
        var states = [StateChange(key.version, .live, reason)]
        if let previous, previous != key.version, state.records[VersionKey(model: key.model, version: previous)]?.state == .live {
            states.append(StateChange(previous, .ready, "replaced by version \(key.version)"))
        }
        let index = write(.setAlias(model: key.model, alias: "production", version: key.version, states: states,
                                    event: EventDraft(actor: actor, action: action, model: key.model, version: key.version,
                                                      before: previous.map(String.init), after: String(key.version), reason: reason)))
        state.aliases[key.model, default: [:]]["production"] = key.version
        ProductionHistory.record(action: action, version: key.version, in: &state.productionHistory[key.model, default: []])
        setStates(states, model: key.model)
        log(.notice, "production switched", [("model.name", key.model), ("model.version", String(key.version)),
                                              ("previous", previous.map(String.init) ?? "none"), ("actor", actor)])
        retire(model: key.model)
        return index
    }

    /// Points a non-production alias at `version`. Returns the write that carries the event.
    @discardableResult
    mutating func pointAlias(model: String, alias: String, version: Int, actor: String, reason: String) -> Int {
        let previous = state.aliases[model]?[alias]
        var states: [StateChange] = []
        if alias == "candidate" {
            // The `candidate` state marks a loaded version waiting for promotion; production,
            // a shadow or a retired version keeps its own state under the alias.
            if state.records[VersionKey(model: model, version: version)]?.state == .ready { states.append(StateChange(version, .candidate, reason)) }
            if let previous, previous != version, state.records[VersionKey(model: model, version: previous)]?.state == .candidate {
                states.append(StateChange(previous, .ready, "the candidate alias moved to version \(version)"))
            }
        }
        let index = write(.setAlias(model: model, alias: alias, version: version, states: states,
                                    event: EventDraft(actor: actor, action: "alias", model: model, version: version,
                                                      before: previous.map { "\(alias)=\($0)" }, after: "\(alias)=\(version)", reason: reason)))
        state.aliases[model, default: [:]][alias] = version
        setStates(states, model: model)
        return index
    }
}
