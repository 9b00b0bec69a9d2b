import Foundation

/// Gradual rollouts: the canary earns its share step by step. Each step sets a split
/// (baseline 100-p, canary p); at every tick the window's statistics are compared
/// (``RolloutPolicy``, a pure function): too little data holds, a failed gate rolls back to 0%
/// at once, a passed last step promotes. The step and the window are persisted at every tick,
/// so a restart resumes at the same step. All of it runs on the lifecycle's queue; the serving
/// path only sees the split.
extension Lifecycle {
    /// Starts rolling `version` out against the current production.
    public func startRollout(model: String, version: Int, plan: RolloutPlan, actor: String, reason: String) throws(RegistryError) -> RolloutRecord {
        try onQueue(atomically: "rollout-start") { () throws(RegistryError) -> RolloutRecord in
            if let problem = plan.problem { throw RegistryError(.invalidArgument, problem) }
            let key = try existingKey(model: model, version: version)
            guard loaded[key] != nil, records[key]!.state.isServable else {
                throw RegistryError(.conflict, "model '\(model)' version \(version) is \(records[key]!.state.rawValue), not loaded; only a loaded version can be rolled out")
            }
            guard let baseline = aliases[model]?["production"], loaded[Key(model: model, version: baseline)] != nil else {
                throw RegistryError(.conflict, "model '\(model)' has no production version serving to compare the canary with")
            }
            guard baseline != version else { throw RegistryError(.conflict, "model '\(model)' version \(version) is already production") }
            if let active = rollouts[model], active.state.isActive {
                throw RegistryError(.conflict, "model '\(model)' already has a rollout of version \(active.version) (\(active.state.rawValue)); abort it first")
            }
            if let mismatch = SignatureCompatibility.mismatch(current: loaded[Key(model: model, version: baseline)]!.servable.signature.inputs,
                                                              candidate: loaded[key]!.servable.signature.inputs) {
                throw RegistryError(.conflict, "model '\(model)' version \(version) is not compatible with production version \(baseline): \(mismatch)")
            }
            let now = clock.now()
            var record = RolloutRecord(id: 0, model: model, version: version, baseline: baseline, plan: plan, step: 0, state: .running,
                                       note: "step 1 of \(plan.steps.count) started", stepStartedAt: now, canary: WindowStats(),
                                       baselineStats: WindowStats(), startedAt: now, updatedAt: now)
            record.id = try catalog.saveRollout(record, event: EventDraft(
                actor: actor, action: "rollout-start", model: model, version: version, before: String(baseline),
                after: "steps \(plan.steps.map(String.init).joined(separator: ",")) every \(plan.intervalSeconds) s", reason: reason))
            try applyRolloutSplit(record, actor: actor)
            rollouts[model] = record
            rolloutSeen[model] = currentStats(model: model, record)
            return record
        }
    }

    /// The model's latest rollout, if any.
    public func rollout(model: String) throws(RegistryError) -> RolloutRecord {
        try onQueue { () throws(RegistryError) -> RolloutRecord in
            guard records.keys.contains(where: { $0.model == model }) else { throw RegistryError(.notFound, "model '\(model)' not found") }
            guard let record = rollouts[model] else { throw RegistryError(.notFound, "model '\(model)' has no rollout") }
            return record
        }
    }

    public enum RolloutCommand: String, Sendable { case pause, resume, abort }

    /// Pauses (the split stays, nothing is judged), resumes (the window starts over) or aborts
    /// (back to 0%: production serves all traffic).
    public func controlRollout(model: String, _ command: RolloutCommand, actor: String, reason: String) throws(RegistryError) -> RolloutRecord {
        try onQueue(atomically: "rollout-control") { () throws(RegistryError) -> RolloutRecord in
            guard records.keys.contains(where: { $0.model == model }) else { throw RegistryError(.notFound, "model '\(model)' not found") }
            guard var record = rollouts[model], record.state.isActive else {
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
                record.stepStartedAt = clock.now()
                record.canary = WindowStats()
                record.baselineStats = WindowStats()
            case .abort:
                record.state = .aborted
                record.note = "aborted"
                try endSplit(model: model, actor: actor, reason: "rollout of version \(record.version) aborted")
            }
            try catalog.saveRollout(record, event: EventDraft(actor: actor, action: "rollout-\(command.rawValue)", model: model, version: record.version,
                                                              before: before, after: record.state.rawValue, reason: reason))
            rollouts[model] = record
            rolloutSeen[model] = currentStats(model: model, record)
            return record
        }
    }

    /// Judges every running rollout (the timer calls it every second; tests call it after
    /// moving their clock).
    public func rolloutTick() {
        queue.sync {
            for model in rollouts.keys.sorted() {
                guard var record = rollouts[model], record.state == .running else { continue }
                // Its canary or baseline still being loaded (the startup restore): judged once
                // both have loaded.
                if jobs[Key(model: model, version: record.version)] != nil || jobs[Key(model: model, version: record.baseline)] != nil { continue }
                // Fold the traffic since the last tick into the window.
                let now = currentStats(model: model, record)
                let seen = rolloutSeen[model] ?? now
                record.canary = record.canary.adding(now.canary.subtracting(seen.canary))
                record.baselineStats = record.baselineStats.adding(now.baseline.subtracting(seen.baseline))
                rolloutSeen[model] = now
                let intervalOver = clock.now() - record.stepStartedAt >= record.plan.intervalSeconds
                var decision = RolloutPolicy.decide(plan: record.plan, step: record.step, canary: record.canary,
                                                    baseline: record.baselineStats, intervalOver: intervalOver)
                // A canary that can no longer serve (its file deleted or changed, unloaded) is
                // rolled back at once rather than promoted or left holding a share it cannot take.
                let canaryKey = Key(model: model, version: record.version)
                if loaded[canaryKey] == nil {
                    let state = records[canaryKey]?.state.rawValue ?? "gone"
                    decision = .rollBack("version \(record.version) is no longer loaded (\(state))")
                }
                let command: String
                switch decision {
                case .advance: command = "rollout-advance"
                case .promote: command = "rollout-promote"
                case .rollBack: command = "rollout-rollback"
                case .wait, .hold: command = "rollout-tick"
                }
                do throws(RegistryError) {
                    // The step, its split and events (or the promotion, or the rollback) commit together.
                    try atomically(command) { () throws(RegistryError) in
                        try carryOut(decision, &record)
                        rollouts[model] = record
                    }
                } catch {
                    // Nothing of the step took effect; the next tick judges again.
                    log.error("rollout step could not be recorded", ["model.name": model, "error": error.message])
                }
            }
        }
    }

    func carryOut(_ decision: RolloutPolicy.Decision, _ record: inout RolloutRecord) throws(RegistryError) {
        let model = record.model
        switch decision {
        case .wait:
            try catalog.saveRollout(record, event: nil)
        case .hold(let why):
            let first = record.note != why
            record.note = why
            try catalog.saveRollout(record, event: first ? EventDraft(action: "rollout-hold", model: model, version: record.version,
                                                                       before: "\(record.plan.steps[record.step])%", after: "\(record.plan.steps[record.step])%", reason: why) : nil)
        case .advance:
            let from = record.plan.steps[record.step]
            let summary = String(format: "step passed: %d canary requests, error rate %.4f", record.canary.requests, record.canary.errorRate)
            record.step += 1
            record.stepStartedAt = clock.now()
            record.canary = WindowStats()
            record.baselineStats = WindowStats()
            record.note = summary
            try catalog.saveRollout(record, event: EventDraft(action: "rollout-step", model: model, version: record.version,
                                                              before: "\(from)%", after: "\(record.plan.steps[record.step])%", reason: summary))
            try applyRolloutSplit(record, actor: EventDraft.daemon)
            log.notice("rollout advanced", ["model.name": model, "model.version": record.version, "percent": record.plan.steps[record.step]])
        case .promote:
            record.state = .promoted
            record.note = String(format: "last step passed: %d canary requests, error rate %.4f", record.canary.requests, record.canary.errorRate)
            try catalog.saveRollout(record, event: nil)
            try endSplit(model: model, actor: EventDraft.daemon, reason: "rollout of version \(record.version) completed")
            _ = try promoteLocked(Key(model: model, version: record.version), actor: EventDraft.daemon,
                                  reason: "rollout completed: \(record.note)")
            log.notice("rollout promoted the canary", ["model.name": model, "model.version": record.version])
        case .rollBack(let why):
            let percent = record.plan.steps[record.step]
            record.state = .rolledBack
            record.note = why
            try catalog.saveRollout(record, event: EventDraft(action: "rollout-rollback", model: model, version: record.version,
                                                              before: "\(percent)%", after: "0%", reason: "automatic rollback: \(why)"))
            try endSplit(model: model, actor: EventDraft.daemon, reason: "rollout of version \(record.version) rolled back: \(why)")
            let key = Key(model: model, version: record.version)
            records[key]?.reason = "rolled back by its rollout at \(percent)%: \(why)"
            if var stored = records[key] {
                stored.updatedAt = clock.now()
                try catalog.save(stored, event: nil)
            }
            log.error("rollout rolled back", ["model.name": model, "model.version": record.version, "reason": why])
        }
    }

    func applyRolloutSplit(_ record: RolloutRecord, actor: String) throws(RegistryError) {
        let percent = record.plan.steps[record.step]
        let weights = percent >= 100 ? [record.version: 100] : [record.baseline: 100 - percent, record.version: percent]
        let previous = splits[record.model]
        try catalog.setRoute(model: record.model, spec: RouteSpec(split: weights, shadow: shadows[record.model]).text,
                             event: EventDraft(actor: actor, action: "split", model: record.model, version: nil,
                                               before: previous.map(RouteSpec.describe), after: RouteSpec.describe(weights),
                                               reason: "rollout of version \(record.version), step \(record.step + 1) of \(record.plan.steps.count)"))
        splits[record.model] = weights
        publish()
    }

    /// The cumulative serving statistics of a rollout's two versions.
    func currentStats(model: String, _ record: RolloutRecord) -> (canary: WindowStats, baseline: WindowStats) {
        let series = stats.snapshot().series
        func window(_ version: Int) -> WindowStats {
            series.first { $0.model == model && $0.version == version }.map { WindowStats($0.series) } ?? WindowStats()
        }
        return (window(record.version), window(record.baseline))
    }

    func restoreRollouts() throws(RegistryError) {
        for record in try catalog.latestRollouts() {
            rollouts[record.model] = record
            rolloutSeen[record.model] = currentStats(model: record.model, record)
            if record.state.isActive {
                log.notice("rollout resumed", ["model.name": record.model, "model.version": record.version, "step": record.step + 1, "state": record.state.rawValue])
            }
        }
    }

    /// Ends an active rollout because an operator took over (promote, rollback, split).
    func supersedeRollout(model: String, actor: String, by action: String) throws(RegistryError) {
        guard var record = rollouts[model], record.state.isActive else { return }
        record.state = .aborted
        record.note = "superseded by \(action)"
        try catalog.saveRollout(record, event: EventDraft(actor: actor, action: "rollout-abort", model: model, version: record.version,
                                                          before: "running", after: "aborted", reason: "superseded by \(action)"))
        rollouts[model] = record
    }
}
