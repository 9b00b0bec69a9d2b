import Foundation

/// Publishing the routing table, and running commands on the queue as one transaction.
extension Lifecycle {
    // MARK: Publishing

    func publish() {
        guard groupDepth == 0 else {
            publishPending = true
            return
        }
        var table = RoutingTable()
        for (key, version) in loaded {
            table.models[key.model, default: RoutingTable.ModelRoutes(production: nil, versions: [:])].versions[key.version] = version
        }
        for (model, modelAliases) in aliases {
            if let production = modelAliases["production"], let version = loaded[Key(model: model, version: production)] {
                table.models[model, default: RoutingTable.ModelRoutes(production: nil, versions: [:])].production = version
            }
        }
        for (key, record) in records {
            table.models[key.model, default: RoutingTable.ModelRoutes(production: nil, versions: [:])].known[key.version] = record.state
        }
        for (model, weights) in splits {
            let arms = TrafficSplit.layout(weights)
            let versions = arms.compactMap { loaded[Key(model: model, version: $0.version)] }
            guard versions.count == arms.count else {
                // Said once the loads in flight (startup's) have ended, not on every publish meanwhile.
                if !arms.contains(where: { jobs[Key(model: model, version: $0.version)] != nil }) {
                    log.warning("split not applied: a version in it is not loaded; production serves", ["model.name": model])
                }
                continue
            }
            table.models[model]?.arms = zip(arms, versions).map { RoutingTable.Arm(version: $1, upperBucket: $0.upperBucket) }
        }
        for (model, shadow) in shadows {
            // The report exists while the shadow is in force, loaded or not (the listing shows it).
            let tally = mirror.tally(model: model, version: shadow.version, percent: shadow.percent)
            guard let version = loaded[Key(model: model, version: shadow.version)] else {
                if jobs[Key(model: model, version: shadow.version)] == nil {
                    log.warning("shadow not applied: its version is not loaded", ["model.name": model, "model.version": shadow.version])
                }
                continue
            }
            table.models[model]?.shadow = RoutingTable.Shadow(version: version, percent: shadow.percent, tally: tally)
        }
        router.publish(table)
        stats.retainOnly(loaded: loaded.keys.map { ($0.model, $0.version) })
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

    /// Promotes `version` of `model` to production.
    public func promote(model: String, version: Int, actor: String, reason: String) throws(RegistryError) {
        try onQueue(atomically: "promote") { () throws(RegistryError) in
            guard records[Key(model: model, version: version)] != nil else {
                throw RegistryError(.notFound, "model '\(model)' version \(version) not found")
            }
            _ = try promoteLocked(Key(model: model, version: version), actor: actor, reason: reason)
        }
    }

    /// Points `alias` of `model` at `version`.
    public func setAlias(model: String, alias: String, version: Int, actor: String, reason: String) throws(RegistryError) {
        try onQueue(atomically: "alias") { () throws(RegistryError) in
            guard records[Key(model: model, version: version)] != nil else {
                throw RegistryError(.notFound, "model '\(model)' version \(version) not found")
            }
            if alias == "production" {
                _ = try promoteLocked(Key(model: model, version: version), actor: actor, reason: reason)
            } else {
                try setAliasLocked(model: model, alias: alias, version: version, actor: actor, reason: reason)
            }
        }
    }

    /// Runs a command on the queue as one catalog transaction (``atomically(_:_:)``).
    func onQueue<T>(atomically command: String, _ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        try onQueue { () throws(RegistryError) -> T in try atomically(command, body) }
    }

    /// Runs a command whose changes span several catalog writes (say a promotion: the rollout
    /// superseded, the split ended, production moved, old versions retired, each with its
    /// event) so that they take effect together or not at all. Its writes share one
    /// transaction; serving sees the new routes only after the commit; if any write or the
    /// commit fails (a full disk), the in-memory state goes back to what it was and the error
    /// is thrown, so memory never runs ahead of the catalog. A crash before the commit leaves
    /// the catalog as before the command. Runs on the queue; `command` names the fault
    /// injection points (``FaultInjection``).
    func atomically<T>(_ command: String, _ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        let saved = (records, loaded, aliases, splits, shadows, productionHistory, rollouts, rolloutSeen)
        let savedReports = groupDepth == 0 ? mirror.saveReports() : nil
        groupDepth += 1
        let result: Result<T, RegistryError>
        do throws(RegistryError) {
            result = .success(try catalog.atomically(body, beforeCommit: { FaultInjection.point("\(command).before-commit") }))
        } catch {
            result = .failure(error)
        }
        groupDepth -= 1
        guard groupDepth == 0 else { return try result.get() }
        if case .failure = result {
            let shadowsNow = shadows
            (records, loaded, aliases, splits, shadows, productionHistory, rollouts, rolloutSeen) = saved
            // The shadows the command changed get their reports back, counts and all (the table
            // still in force, never republished with the command's, carries their tallies).
            let changed = Set(Set(shadowsNow.keys).union(shadows.keys).filter { shadowsNow[$0] != shadows[$0] })
            if let savedReports { mirror.restoreReports(savedReports, models: changed) }
        } else {
            FaultInjection.point("\(command).after-commit")
        }
        if publishPending {
            publishPending = false
            publish()
        }
        return try result.get()
    }

    func onQueue<T>(_ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        let result: Result<T, RegistryError> = queue.sync {
            do throws(RegistryError) { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
