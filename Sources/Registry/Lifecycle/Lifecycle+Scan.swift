import Foundation

/// Discovery: the model root against the catalog (TF Serving's source), and what a known
/// version's file tells on each scan.
extension Lifecycle {
    // MARK: Scan and admission

    func scanLocked() throws(RegistryError) {
        // Before the restore, every recorded version would look new (a `POST /v1/rescan` can
        // come as soon as the server listens).
        guard !stopped, restored else { return }
        let scan = try directory.scan()
        for problem in scan.problems where !reportedProblems.contains(problem) {
            reportedProblems.insert(problem)
            log.warning("model root entry refused", ["problem": problem])
        }
        let now = clock.now()
        var present: Set<Key> = []
        var earliestSettle: Double?
        for observation in scan.artifacts {
            let key = Key(model: observation.model, version: observation.version)
            present.insert(key)
            if inFlight.contains(key) { continue }
            if let record = records[key] {
                if let wait = try reconcileKnown(key, record, observation, now: now) {
                    earliestSettle = min(earliestSettle ?? wait, wait)
                }
                continue
            }
            if let wait = settleRemaining(observation, now: now) {
                earliestSettle = min(earliestSettle ?? wait, wait)
                continue
            }
            admit(key, observation)
        }
        for (key, record) in records where !present.contains(key) && record.state.isServable {
            let serving = loaded[key] != nil
            try transition(key, to: .missing,
                           reason: "artifact '\(record.path)' disappeared" + (serving ? "; still serving from memory" : ""),
                           action: "missing")
            log.warning("artifact disappeared", ["model.name": key.model, "model.version": key.version, "serving": serving])
        }
        if let earliestSettle, !settleRecheckScheduled {
            settleRecheckScheduled = true
            queue.asyncAfter(deadline: .now() + max(earliestSettle, 0.01)) { [self] in
                settleRecheckScheduled = false
                do throws(RegistryError) { try scanLocked() } catch {
                    log.error("rescan failed", ["error": error.message])
                }
            }
        }
        for (path, at) in movedIn where now - at > 60 { movedIn[path] = nil }
    }

    /// Seconds until the artifact counts as complete, or nil when it is complete now.
    ///
    /// Complete means unmodified for the settle window; or, when it arrived by rename (an atomic
    /// write), unmodified for `renameQuiet`: a short guard, because a rename event is processed a
    /// moment after it happens, and a writer that renames an empty file into place and then
    /// appends to it (as some libraries' "atomic create" does) must not be caught half-way.
    func settleRemaining(_ observation: ArtifactObservation, now: Double) -> Double? {
        let age = now - observation.mtime
        var window = config.settleSeconds
        for path in [observation.path, observation.versionDirectory] where movedIn[path] != nil {
            window = min(window, Lifecycle.renameQuiet)
        }
        return age >= window ? nil : window - age
    }

    /// Loads a version whose file was just hashed and found to be the admitted bytes (`sha256`).
    func loadChecked(_ key: Key, _ record: VersionRecord, sha256: String, size: Int64) throws(RegistryError) -> LoadedVersion {
        let manifest = record.manifest.flatMap { try? Manifest.parse(file: record.path, data: Data($0.utf8)) }
        let session = try loader.load(path: record.path, manifest: manifest)
        let servable = ONNXServable(session: session, provenance: Provenance(model: key.model, version: key.version, sha256: sha256))
        return LoadedVersion(model: key.model, version: key.version, sha256: sha256, servable: servable, manifest: manifest,
                             loadedAt: clock.now(), estimatedBytes: MemoryBudget.estimate(size: size))
    }

    /// How long a file that arrived by rename must stay unmodified.
    static let renameQuiet = 0.25

    /// Compares a known version with its file; returns the seconds to wait when the file changed
    /// but has not settled yet.
    func reconcileKnown(_ key: Key, _ record: VersionRecord, _ observation: ArtifactObservation, now: Double) throws(RegistryError) -> Double? {
        let sameIdentity = record.size == observation.size && record.mtime == observation.mtime
        let admittedBefore = record.state == .failed && !sameIdentity ? try catalog.wasAdmitted(model: key.model, version: key.version) : false
        switch record.state {
        case .failed where !sameIdentity && !admittedBefore,
             .quarantined where !sameIdentity && record.sha256 == nil:
            // Never admitted (it failed verification or its first load): new bytes get a fresh
            // admission once complete. A version that was once ready, then failed (say its file
            // became unreadable), keeps its recorded bytes: new ones fall through to the
            // immutability check below and are quarantined.
            if let wait = settleRemaining(observation, now: now) { return wait }
            records[key] = nil
            admit(key, observation)
            return nil
        case .failed, .quarantined, .retired:
            if sameIdentity || record.state == .retired { return nil }
        default:
            break
        }
        if sameIdentity && record.state != .missing { return nil }
        if let wait = settleRemaining(observation, now: now) { return wait }
        // The file changed (or came back): is it still the same artifact?
        let digest: (hex: String, size: Int64)
        do throws(RegistryError) { digest = try SHA256.file(at: observation.path) } catch { return nil }
        if digest.hex == record.sha256 {
            var updated = record
            updated.mtime = observation.mtime
            updated.size = observation.size
            var event: EventDraft?
            if record.state == .missing {
                let production = key.version == aliases[key.model]?["production"]
                updated.reason = "artifact reappeared with the same bytes"
                if loaded[key] == nil && production {
                    // Production was missing when the daemon started, so nothing serves the
                    // model: its file is back with the admitted bytes, so it is loaded again
                    // (on the queue, as a rollback's reload is) rather than left retired until
                    // an operator notices the 503s.
                    do throws(RegistryError) {
                        loaded[key] = try loadChecked(key, record, sha256: digest.hex, size: digest.size)
                        updated.reason += "; production loaded again"
                        log.notice("production reappeared and was loaded again", ["model.name": key.model, "model.version": key.version])
                    } catch {
                        // Left missing, with its identity unchanged: the next scan tries again.
                        log.error("production reappeared but could not be loaded; the next scan tries again",
                                  ["model.name": key.model, "model.version": key.version, "error": error.message])
                        return nil
                    }
                }
                let serving = loaded[key] != nil
                updated.state = serving ? (production ? .live : .ready) : .retired
                event = EventDraft(action: "reappear", model: key.model, version: key.version, before: "missing", after: updated.state.rawValue, reason: updated.reason)
            }
            updated.updatedAt = now
            try catalog.save(updated, event: event)
            records[key] = updated
            if event != nil { publish() }
            return nil
        }
        let reason = "version \(key.version) of '\(key.model)' is immutable: new bytes \(digest.hex) differ from the recorded \(record.sha256 ?? "?"); the recorded version keeps serving"
        let alreadyQuarantined = try catalog.quarantineCount(model: key.model, version: key.version) > 0 && record.mtime == observation.mtime
        var updated = record
        updated.mtime = observation.mtime
        updated.size = observation.size
        if !alreadyQuarantined {
            try catalog.quarantine(model: key.model, version: key.version, sha256: digest.hex, size: digest.size, path: observation.path, reason: reason)
            log.error("changed bytes under a known version quarantined", ["model.name": key.model, "model.version": key.version, "sha256": digest.hex])
        }
        let production = aliases[key.model]?["production"] == key.version
        if loaded[key] == nil && record.state != .quarantined {
            // A version that is not in memory can no longer be loaded from its file.
            updated.state = .quarantined
            updated.reason = reason
            updated.updatedAt = now
            try catalog.save(updated, event: EventDraft(action: "quarantine", model: key.model, version: key.version, before: record.state.rawValue, after: "quarantined", reason: reason))
        } else if loaded[key] != nil && !production {
            // As `verify` does: any version but production is unloaded. What is on disk is no
            // longer what was admitted, so it could not be loaded again (a restart, a reload
            // after retention), and a promotion must not make it production; nothing needs it
            // to keep answering. (A split falls back to production, a rollout rolls back, a
            // shadow stops, each saying why.) Production keeps serving the admitted bytes.
            let unloaded = "version \(key.version) of '\(key.model)' is immutable: new bytes \(digest.hex) differ from the recorded \(record.sha256 ?? "?"); unloaded (a version's bytes cannot change: publish new bytes as a new version)"
            loaded[key] = nil
            updated.state = .quarantined
            updated.reason = unloaded
            updated.updatedAt = now
            try catalog.save(updated, event: EventDraft(action: "quarantine", model: key.model, version: key.version, before: record.state.rawValue, after: "quarantined", reason: unloaded))
            log.error("changed bytes under a loaded version that is not production; unloaded", ["model.name": key.model, "model.version": key.version])
            records[key] = updated
            publish()
            return nil
        } else {
            updated.updatedAt = now
            try catalog.save(updated, event: nil)
        }
        records[key] = updated
        return nil
    }
}
