import Foundation

/// Aliases, promotion, retention, state transitions and the memory budget, on the queue.
extension Lifecycle {
    // MARK: Aliases and promotion

    /// Makes `key` the production version. The previous production stays loaded (per policy).
    func promoteLocked(_ key: Key, actor: String, reason: String, action: String = "promote") throws(RegistryError) -> Int64 {
        guard loaded[key] != nil else {
            throw RegistryError(.unavailable, "model '\(key.model)' version \(key.version) is not loaded")
        }
        let previous = aliases[key.model]?["production"]
        var states: [(version: Int, state: VersionState, reason: String)] = [(key.version, .live, reason)]
        if let previous, previous != key.version, records[Key(model: key.model, version: previous)]?.state == .live {
            states.append((previous, .ready, "replaced by version \(key.version)"))
        }
        let now = clock.now()
        let eventID = try catalog.setAlias(model: key.model, alias: "production", version: key.version, states: states, at: now,
                                           event: EventDraft(actor: actor, action: action, model: key.model, version: key.version,
                                                             before: previous.map(String.init), after: String(key.version), reason: reason))
        aliases[key.model, default: [:]]["production"] = key.version
        ProductionHistory.record(action: action, version: key.version, in: &productionHistory[key.model, default: []])
        apply(states, model: key.model, at: now)
        log.notice("production switched", ["model.name": key.model, "model.version": key.version, "previous": previous.map(String.init) ?? "none", "actor": actor])
        try retire(model: key.model)
        publish()
        return eventID
    }

    @discardableResult
    func setAliasLocked(model: String, alias: String, version: Int, actor: String, reason: String) throws(RegistryError) -> Int64 {
        let previous = aliases[model]?[alias]
        var states: [(version: Int, state: VersionState, reason: String)] = []
        if alias == "candidate" {
            // The `candidate` state marks a loaded version waiting for promotion; production,
            // a shadow or a retired version keeps its own state under the alias.
            if records[Key(model: model, version: version)]?.state == .ready { states.append((version, .candidate, reason)) }
            if let previous, previous != version, records[Key(model: model, version: previous)]?.state == .candidate {
                states.append((previous, .ready, "the candidate alias moved to version \(version)"))
            }
        }
        let now = clock.now()
        let eventID = try catalog.setAlias(model: model, alias: alias, version: version, states: states, at: now,
                                           event: EventDraft(actor: actor, action: "alias", model: model, version: version,
                                                             before: previous.map { "\(alias)=\($0)" }, after: "\(alias)=\(version)", reason: reason))
        aliases[model, default: [:]][alias] = version
        apply(states, model: model, at: now)
        publish()
        return eventID
    }

    /// Unloads the versions the retention policy no longer keeps.
    func retire(model: String) throws(RegistryError) {
        let loadedVersions = Set(loaded.keys.filter { $0.model == model }.map(\.version))
        let modelAliases = aliases[model] ?? [:]
        let drop = RetentionPolicy.versionsToUnload(
            loaded: loadedVersions, production: modelAliases["production"], aliased: protected(model),
            keepPrevious: config.policy(for: model).keepPrevious)
        for version in drop.sorted() {
            let key = Key(model: model, version: version)
            loaded[key] = nil  // serving drops its reference when the new table is published
            let state = records[key]?.state
            if state == .missing || state == .quarantined { continue }
            try transition(key, to: .retired, reason: "unloaded: beyond keep_previous=\(config.policy(for: model).keepPrevious)", action: "retire")
        }
    }

    /// Versions that something points at: an alias, a split arm or the shadow.
    func protected(_ model: String) -> Set<Int> {
        Set((aliases[model] ?? [:]).values).union(splits[model].map { Set($0.keys) } ?? []).union(shadows[model].map { [$0.version] } ?? [])
            .union(reserved.filter { $0.model == model }.map(\.version))
    }

    /// Moves a version to `state`, recording it with its event; the record's `updated_at` is the
    /// stamp given to the catalog, so the model listing shows when its state last changed
    /// without reading the row back.
    func transition(_ key: Key, to state: VersionState, reason: String, action: String) throws(RegistryError) {
        let before = records[key]?.state
        let now = clock.now()
        try catalog.setState(model: key.model, version: key.version, state, reason: reason,
                             event: EventDraft(action: action, model: key.model, version: key.version, before: before?.rawValue, after: state.rawValue, reason: reason),
                             at: now)
        records[key]?.state = state
        records[key]?.reason = reason
        records[key]?.updatedAt = now
    }
}
