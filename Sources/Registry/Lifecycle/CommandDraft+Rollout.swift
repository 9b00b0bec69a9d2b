import Foundation

/// Rollouts: starting one, pausing, resuming or aborting it, and carrying out what
/// ``RolloutPolicy`` decided at a tick. Each step's split, events and record change together.
extension CommandDraft {
    /// `rollout start`: rolls `version` out against the current production, step by step.
    mutating func startRollout(model: String, version: Int, plan: RolloutPlan, actor: String, reason: String) throws(RegistryError) {
        if let problem = plan.problem { throw RegistryError(.invalidArgument, problem) }
        let key = try state.existingKey(model: model, version: version)
        guard let canary = state.loaded[key], state.records[key]!.state.isServable else {
            throw RegistryError(.conflict, "model '\(model)' version \(version) is \(state.records[key]!.state.rawValue), not loaded; only a loaded version can be rolled out")
        }
        guard let baseline = state.production(of: model), let current = state.loaded[VersionKey(model: model, version: baseline)] else {
            throw RegistryError(.conflict, "model '\(model)' has no production version serving to compare the canary with")
        }
        guard baseline != version else { throw RegistryError(.conflict, "model '\(model)' version \(version) is already production") }
        if let active = state.rollouts[model], active.state.isActive {
            throw RegistryError(.conflict, "model '\(model)' already has a rollout of version \(active.version) (\(active.state.rawValue)); abort it first")
        }
        if let breakage = pipelineBreakage(model: model, to: canary, selector: .routed) {
            throw RegistryError(.conflict, "model '\(model)' version \(version) cannot be rolled out: it would break a pipeline: \(breakage)")
        }
        if let mismatch = SignatureCompatibility.mismatch(current: current.servable.signature.inputs, candidate: canary.servable.signature.inputs) {
            throw RegistryError(.conflict, "model '\(model)' version \(version) is not compatible with production version \(baseline): \(mismatch)")
        }
        let record = RolloutRecord(id: 0, model: model, version: version, baseline: baseline, plan: plan, step: 0, state: .running,
                                   note: "step 1 of \(plan.steps.count) started", stepStartedAt: now, canary: WindowStats(),
                                   baselineStats: WindowStats(), startedAt: now, updatedAt: now)
        // The database gives the new rollout its id at the commit (``adopt(_:)``).
        write(.saveRollout(record, event: EventDraft(
            actor: actor, action: "rollout-start", model: model, version: version, before: String(baseline),
            after: "steps \(plan.steps.map(String.init).joined(separator: ",")) every \(plan.intervalSeconds) s", reason: reason)))
        applyRolloutSplit(record, actor: actor)
        state.rollouts[model] = record
        effect(.restartWindow(model: model))
    }

    /// `rollout pause|resume|abort`: pauses (the split stays, nothing is judged), resumes (the
    /// window starts over) or aborts (back to 0%: production serves all traffic).
    mutating func controlRollout(model: String, _ command: Lifecycle.RolloutCommand, actor: String, reason: String) throws(RegistryError) {
        guard state.knows(model: model) else { throw RegistryError(.notFound, "model '\(model)' not found") }
        guard var record = state.rollouts[model], record.state.isActive else {
            throw RegistryError(.conflict, "model '\(model)' has no rollout in progress")
        }
        let before = record.state.rawValue
        switch command {
        case .pause:
            guard record.state == .running else { throw RegistryError(.conflict, "the rollout of model '\(model)' is already paused") }
            record.state = .paused
            record.note = "paused"
        case .resume:
            guard record.state == .paused else { throw RegistryError(.conflict, "the rollout of model '\(model)' is not paused") }
            record.state = .running
            record.note = "resumed: step \(record.step + 1) starts over"
            record.stepStartedAt = now
            record.canary = WindowStats()
            record.baselineStats = WindowStats()
        case .abort:
            record.state = .aborted
            record.note = "aborted"
            endSplit(model: model, actor: actor, reason: "rollout of version \(record.version) aborted")
        }
        write(.saveRollout(record, event: EventDraft(actor: actor, action: "rollout-\(command.rawValue)", model: model, version: record.version,
                                                     before: before, after: record.state.rawValue, reason: reason)))
        state.rollouts[model] = record
        effect(.restartWindow(model: model))
    }

    /// Carries out what ``RolloutPolicy`` decided for `record` (its window already holds the
    /// traffic up to this tick): the record, its split, its events and a promotion or rollback.
    mutating func carryOut(_ decision: RolloutPolicy.Decision, _ record: RolloutRecord) throws(RegistryError) {
        var record = record
        let model = record.model
        switch decision {
        case .wait:
            write(.saveRollout(record, event: nil))
        case .hold(let why):
            let first = record.note != why
            record.note = why
            let percent = "\(record.plan.steps[record.step])%"
            write(.saveRollout(record, event: first ? EventDraft(action: "rollout-hold", model: model, version: record.version,
                                                                 before: percent, after: percent, reason: why) : nil))
        case .advance:
            let from = record.plan.steps[record.step]
            let summary = String(format: "step passed: %d canary requests, error rate %.4f", record.canary.requests, record.canary.errorRate)
            record.step += 1
            record.stepStartedAt = now
            record.canary = WindowStats()
            record.baselineStats = WindowStats()
            record.note = summary
            write(.saveRollout(record, event: EventDraft(action: "rollout-step", model: model, version: record.version,
                                                         before: "\(from)%", after: "\(record.plan.steps[record.step])%", reason: summary)))
            applyRolloutSplit(record, actor: EventDraft.daemon)
            log(.notice, "rollout advanced", [("model.name", model), ("model.version", String(record.version)),
                                              ("percent", String(record.plan.steps[record.step]))])
        case .promote:
            record.state = .promoted
            record.note = String(format: "last step passed: %d canary requests, error rate %.4f", record.canary.requests, record.canary.errorRate)
            write(.saveRollout(record, event: nil))
            endSplit(model: model, actor: EventDraft.daemon, reason: "rollout of version \(record.version) completed")
            _ = try makeProduction(VersionKey(model: model, version: record.version), actor: EventDraft.daemon,
                                   reason: "rollout completed: \(record.note)")
            log(.notice, "rollout promoted the canary", [("model.name", model), ("model.version", String(record.version))])
        case .rollBack(let why):
            let percent = record.plan.steps[record.step]
            record.state = .rolledBack
            record.note = why
            write(.saveRollout(record, event: EventDraft(action: "rollout-rollback", model: model, version: record.version,
                                                         before: "\(percent)%", after: "0%", reason: "automatic rollback: \(why)")))
            endSplit(model: model, actor: EventDraft.daemon, reason: "rollout of version \(record.version) rolled back: \(why)")
            let key = VersionKey(model: model, version: record.version)
            if var stored = state.records[key] {
                stored.reason = "rolled back by its rollout at \(percent)%: \(why)"
                stored.updatedAt = now
                save(stored)
            }
            log(.error, "rollout rolled back", [("model.name", model), ("model.version", String(record.version)), ("reason", why)])
        }
        state.rollouts[model] = record
    }

    /// Sets the split a rollout's current step asks for.
    mutating func applyRolloutSplit(_ record: RolloutRecord, actor: String) {
        let percent = record.plan.steps[record.step]
        let weights = percent >= 100 ? [record.version: 100] : [record.baseline: 100 - percent, record.version: percent]
        let previous = state.splits[record.model]
        write(.setRoute(model: record.model, spec: RouteSpec(split: weights, shadow: state.shadows[record.model]).text, states: [],
                        event: EventDraft(actor: actor, action: "split", model: record.model, version: nil,
                                          before: previous.map(RouteSpec.describe), after: RouteSpec.describe(weights),
                                          reason: "rollout of version \(record.version), step \(record.step + 1) of \(record.plan.steps.count)")))
        state.splits[record.model] = weights
    }

    /// Ends an active rollout because an operator took over (promote, rollback, split).
    mutating func supersedeRollout(model: String, actor: String, by action: String) {
        guard var record = state.rollouts[model], record.state.isActive else { return }
        record.state = .aborted
        record.note = "superseded by \(action)"
        write(.saveRollout(record, event: EventDraft(actor: actor, action: "rollout-abort", model: model, version: record.version,
                                                     before: "running", after: "aborted", reason: "superseded by \(action)")))
        state.rollouts[model] = record
    }
}
