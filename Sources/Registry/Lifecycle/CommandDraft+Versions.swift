/// Steps on one version: its record, its state, whether it is loaded, its quarantined bytes.
extension CommandDraft {
    /// Records `record` (inserted or replaced), with an optional event.
    @discardableResult
    mutating func save(_ record: VersionRecord, event: EventDraft? = nil) -> Int {
        state.records[VersionKey(model: record.model, version: record.version)] = record
        return write(.saveVersion(record, event: event))
    }

    /// Moves a version to `newState` with its event; the record's `updated_at` is the command's
    /// time, which the catalog stamps too.
    @discardableResult
    mutating func transition(_ key: VersionKey, to newState: VersionState, reason: String, action: String) -> Int {
        let before = state.records[key]?.state
        setStates([StateChange(key.version, newState, reason)], model: key.model)
        return write(.setState(model: key.model, version: key.version, state: newState, reason: reason,
                               event: EventDraft(action: action, model: key.model, version: key.version, before: before?.rawValue,
                                                 after: newState.rawValue, reason: reason)))
    }

    /// Applies to the records the state changes that an alias or route write carries.
    mutating func setStates(_ changes: [StateChange], model: String) {
        for change in changes {
            let key = VersionKey(model: model, version: change.version)
            state.records[key]?.state = change.state
            state.records[key]?.reason = change.reason
            state.records[key]?.updatedAt = now
        }
    }

    /// Puts a loaded version into service (serving sees it at the next publish).
    mutating func install(_ key: VersionKey, _ version: LoadedVersion) {
        state.loaded[key] = version
    }

    /// Takes a version out of service; serving drops its reference when the table is published.
    mutating func unload(_ key: VersionKey) {
        state.loaded[key] = nil
    }

    /// Unloads the versions the retention policy no longer keeps, retiring each.
    mutating func retire(model: String) {
        let loadedVersions = Set(state.loaded.keys.filter { $0.model == model }.map(\.version))
        let keep = config.policy(for: model).keepPrevious
        let drop = RetentionPolicy.versionsToUnload(loaded: loadedVersions, production: state.production(of: model),
                                                    aliased: state.protected(model), keepPrevious: keep)
        for version in drop.sorted() {
            let key = VersionKey(model: model, version: version)
            unload(key)
            let current = state.records[key]?.state
            if current == .missing || current == .quarantined { continue }
            transition(key, to: .retired, reason: "unloaded: beyond keep_previous=\(keep)", action: "retire")
        }
    }

    /// Quarantines a version whose file holds other bytes than the admitted ones (startup,
    /// verify, a rollback's reload): records the bytes found, moves the version to
    /// `quarantined`, unloads it, and remembers the file's identity (`identity`, read when the
    /// bytes were found), so that the next scan does not record the same bytes again.
    mutating func quarantineChangedBytes(_ key: VersionKey, found digest: (hex: String, size: Int64), path: String, reason: String,
                                         identity: (size: Int64, mtime: Double)?) {
        recordQuarantinedBytes(key, digest, path: path, reason: reason)
        unload(key)
        transition(key, to: .quarantined, reason: reason, action: "quarantine")
        if var updated = state.records[key] {
            if let identity {
                updated.size = identity.size
                updated.fileSize = nil
                updated.mtime = identity.mtime
            }
            updated.file = .changed
            save(updated)
        }
    }

    /// Records bytes found under a known version in the quarantine table, with its event.
    mutating func recordQuarantinedBytes(_ key: VersionKey, _ digest: (hex: String, size: Int64), path: String, reason: String) {
        write(.quarantine(model: key.model, version: key.version, sha256: digest.hex, size: digest.size, path: path, reason: reason))
        log(.error, "changed bytes under a known version quarantined", [("model.name", key.model), ("model.version", String(key.version)), ("sha256", digest.hex)])
    }
}
