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
        try onQueue { () throws(RegistryError) -> RolloutRecord in
            _ = try command("rollout-start") { draft throws(RegistryError) in
                try draft.startRollout(model: model, version: version, plan: plan, actor: actor, reason: reason)
            }
            return state.rollouts[model]!
        }
    }

    /// The model's latest rollout, if any.
    public func rollout(model: String) throws(RegistryError) -> RolloutRecord {
        try onQueue { () throws(RegistryError) -> RolloutRecord in
            guard state.knows(model: model) else { throw RegistryError(.notFound, "model '\(model)' not found") }
            guard let record = state.rollouts[model] else { throw RegistryError(.notFound, "model '\(model)' has no rollout") }
            return record
        }
    }

    public enum RolloutCommand: String, Sendable { case pause, resume, abort }

    /// Pauses (the split stays, nothing is judged), resumes (the window starts over) or aborts
    /// (back to 0%: production serves all traffic).
    public func controlRollout(model: String, _ command: RolloutCommand, actor: String, reason: String) throws(RegistryError) -> RolloutRecord {
        try onQueue { () throws(RegistryError) -> RolloutRecord in
            _ = try self.command("rollout-control") { draft throws(RegistryError) in
                try draft.controlRollout(model: model, command, actor: actor, reason: reason)
            }
            return state.rollouts[model]!
        }
    }

    /// Judges every running rollout (the timer calls it every second; tests call it after
    /// moving their clock).
    public func rolloutTick() {
        queue.sync {
            for model in state.rollouts.keys.sorted() {
                guard var record = state.rollouts[model], record.state == .running else { continue }
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
                if state.loaded[canaryKey] == nil {
                    let current = state.records[canaryKey]?.state.rawValue ?? "gone"
                    decision = .rollBack("version \(record.version) is no longer loaded (\(current))")
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
                    _ = try self.command(command) { draft throws(RegistryError) in try draft.carryOut(decision, record) }
                } catch {
                    // Nothing of the step took effect; the next tick judges again.
                    log.error("rollout step could not be recorded", ["model.name": model, "error": error.message])
                }
            }
        }
    }

    /// The cumulative serving statistics of a rollout's two versions.
    func currentStats(model: String, _ record: RolloutRecord) -> (canary: WindowStats, baseline: WindowStats) {
        let series = stats.snapshot().series
        func window(_ version: Int) -> WindowStats {
            series.first { $0.model == model && $0.version == version }.map { WindowStats($0.series) } ?? WindowStats()
        }
        return (window(record.version), window(record.baseline))
    }

    func restoreRollouts() throws(RegistryError) -> [String: RolloutRecord] {
        var rollouts: [String: RolloutRecord] = [:]
        for record in try catalog.latestRollouts() {
            rollouts[record.model] = record
            rolloutSeen[record.model] = currentStats(model: record.model, record)
            if record.state.isActive {
                log.notice("rollout resumed", ["model.name": record.model, "model.version": record.version, "step": record.step + 1, "state": record.state.rawValue])
            }
        }
        return rollouts
    }
}
