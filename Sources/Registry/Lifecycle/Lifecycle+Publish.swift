import Foundation

/// Publishing the routing table, and running commands on the queue as one transaction.
extension Lifecycle {
    // MARK: Publishing

    /// Builds the routing table from the state in force and hands it to serving (on the queue).
    /// Nothing is published before the catalog has been restored: a half-restored table would
    /// warn about splits whose versions have not begun to load.
    func publish() {
        guard restored else { return }
        var table = RoutingTable()
        for (key, version) in state.loaded {
            table.models[key.model, default: RoutingTable.ModelRoutes(production: nil, versions: [:])].versions[key.version] = version
        }
        for (model, modelAliases) in state.aliases {
            table.models[model, default: RoutingTable.ModelRoutes(production: nil, versions: [:])].aliases = modelAliases.filter { $0.key != "production" }
            if let production = modelAliases["production"], let version = state.loaded[Key(model: model, version: production)] {
                table.models[model, default: RoutingTable.ModelRoutes(production: nil, versions: [:])].production = version
            }
        }
        for (key, record) in state.records {
            table.models[key.model, default: RoutingTable.ModelRoutes(production: nil, versions: [:])].known[key.version] = record.state
        }
        for (model, weights) in state.splits {
            let arms = TrafficSplit.layout(weights)
            let versions = arms.compactMap { state.loaded[Key(model: model, version: $0.version)] }
            guard versions.count == arms.count else {
                // Said once the loads in flight (startup's) have ended, not on every publish meanwhile.
                if !arms.contains(where: { jobs[Key(model: model, version: $0.version)] != nil }) {
                    log.warning("split not applied: a version in it is not loaded; production serves", ["model.name": model])
                }
                continue
            }
            table.models[model]?.arms = zip(arms, versions).map { RoutingTable.Arm(version: $1, upperBucket: $0.upperBucket) }
        }
        for (model, shadow) in state.shadows {
            // The report exists while the shadow is in force, loaded or not (the listing shows it).
            let tally = mirror.tally(model: model, version: shadow.version, percent: shadow.percent)
            guard let version = state.loaded[Key(model: model, version: shadow.version)] else {
                if jobs[Key(model: model, version: shadow.version)] == nil {
                    log.warning("shadow not applied: its version is not loaded", ["model.name": model, "model.version": shadow.version])
                }
                continue
            }
            table.models[model]?.shadow = RoutingTable.Shadow(version: version, percent: shadow.percent, tally: tally)
        }
        router.publish(table)
        stats.retainOnly(loaded: state.loaded.keys.map { ($0.model, $0.version) })
    }

    // MARK: Internal API for the control plane

    /// Every model's versions as recorded, with their aliases and whether they are loaded.
    public struct ModelStatus: Sendable {
        public var name: String
        public var versions: [VersionRecord]
        public var aliases: [String: Int]
        public var loadedVersions: Set<Int>
    }

    public func status() -> [ModelStatus] {
        snapshot().models
    }

    /// Runs a command (on the queue): `body` drafts the new state and the catalog writes that
    /// record it; the writes commit in one transaction (all or, on a failure such as a full
    /// disk, none); then the new state is swapped in, its effects carried out and the routing
    /// table published. A failed command changes nothing: its draft is dropped and the error
    /// thrown. A crash before the commit leaves the catalog as before the command. `name` names
    /// its fault injection points (``FaultInjection``). Returns what `body` returned, and the
    /// event the command reports.
    func command<T>(_ name: String, _ body: (inout CommandDraft) throws(RegistryError) -> T) throws(RegistryError) -> (value: T, event: Int64?) {
        var draft = CommandDraft(state, config: config, now: clock.now())
        let value = try body(&draft)
        let receipts = try catalog.commit(draft.writes, at: draft.now, beforeCommit: { FaultInjection.point("\(name).before-commit") })
        draft.adopt(receipts)
        FaultInjection.point("\(name).after-commit")
        state = draft.state
        for effect in draft.effects {
            switch effect {
            case .configureMirror(let model, let spec):
                mirror.configure(model: model, version: spec?.version, percent: spec?.percent ?? 0)
            case .restartWindow(let model):
                if let record = state.rollouts[model] { rolloutSeen[model] = currentStats(model: model, record) }
            case .log(let level, let message, let metadata):
                log.log(level, message, pairs: metadata)
            }
        }
        publish()
        scheduleParkedRecheck()
        return (value, draft.reported.flatMap { receipts.indices.contains($0) ? receipts[$0].eventID : nil })
    }

    /// Moves a version to `state` with its event, as a command of one step.
    func transition(_ key: Key, to newState: VersionState, reason: String, action: String) throws(RegistryError) {
        _ = try command(action) { draft in draft.transition(key, to: newState, reason: reason, action: action) }
    }

    /// A control command that answers with an outcome naming the event it recorded.
    func outcome(_ name: String, _ body: (inout CommandDraft) throws(RegistryError) -> CommandOutcome) throws(RegistryError) -> CommandOutcome {
        try onQueue { () throws(RegistryError) -> CommandOutcome in
            var (outcome, event) = try command(name, body)
            outcome.eventID = event
            return outcome
        }
    }

    func onQueue<T>(_ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        let result: Result<T, RegistryError> = queue.sync {
            do throws(RegistryError) { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
