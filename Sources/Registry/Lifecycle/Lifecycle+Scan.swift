import Foundation

/// Discovery: the model root against the catalog (TF Serving's source), and what a known
/// version's file tells on each scan.
extension Lifecycle {
    // MARK: Scan and admission

    func scanLocked() throws(RegistryError) {
        // Before the restore, every recorded version would look new (a `POST /v1/rescan` can
        // come as soon as the server listens).
        guard !stopped, !stopping, restored else { return }
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
            if jobs[key] != nil || checking.contains(key) { continue }
            if let record = state.records[key] {
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
        for (key, record) in state.records where !present.contains(key) && record.state.isServable {
            let serving = state.loaded[key] != nil
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

    /// How long a file that arrived by rename must stay unmodified.
    static let renameQuiet = 0.25

    /// Compares a known version with its file; returns the seconds to wait when the file changed
    /// but has not settled yet.
    func reconcileKnown(_ key: Key, _ record: VersionRecord, _ observation: ArtifactObservation, now: Double) throws(RegistryError) -> Double? {
        let sameIdentity = record.identitySize == observation.size && record.mtime == observation.mtime
        let admittedBefore = record.state == .failed && !sameIdentity ? try catalog.wasAdmitted(model: key.model, version: key.version) : false
        switch record.state {
        case .failed where !sameIdentity && !admittedBefore,
             .quarantined where !sameIdentity && record.sha256 == nil:
            // Never admitted (it failed verification or its first load): new bytes get a fresh
            // admission once complete. A version that was once ready, then failed (say its file
            // became unreadable), keeps its recorded bytes: new ones fall through to the
            // immutability check below and are quarantined.
            if let wait = settleRemaining(observation, now: now) { return wait }
            // Its `discover` record replaces the failed one.
            admit(key, observation)
            return nil
        case .failed, .quarantined, .retired:
            if sameIdentity || record.state == .retired { return nil }
        default:
            break
        }
        let production = state.isProduction(key)
        // A file found changed under production that production no longer is: judged again,
        // since only loaded production may serve changed bytes from memory.
        let changedBeyondProduction = record.file == .changed && !(production && state.loaded[key] != nil)
        if sameIdentity && record.state != .missing && !changedBeyondProduction { return nil }
        if let wait = settleRemaining(observation, now: now) { return wait }
        if record.state == .missing && production && state.loaded[key] == nil {
            // Production was missing when the daemon started, so nothing serves the model: its
            // file is back, so it is checked and loaded again (through the memory budget, as
            // any load) rather than left retired until an operator notices the 503s.
            beginLoad(LoadJob(key: key, cause: .reappearance, record: record, observation: observation))
            return nil
        }
        // The file changed (or came back): is it still the same artifact? Hashed on the loader
        // thread; judged on the queue against the record as it is then.
        checking.insert(key)
        loaderQueue.async { [self] in
            let digest = try? SHA256.file(at: observation.path)
            queue.async { [self] in
                checking.remove(key)
                guard !stopped, let digest, let record = state.records[key] else { return }
                do throws(RegistryError) { try reconcileHashed(key, record, observation, digest: digest, now: clock.now()) } catch {
                    log.error("rescan failed", ["error": error.message])
                }
            }
        }
        return nil
    }

    /// Applies ``ArtifactIntegrity`` to a known version whose file a scan found changed (on the queue).
    func reconcileHashed(_ key: Key, _ record: VersionRecord, _ observation: ArtifactObservation, digest: (hex: String, size: Int64),
                         now: Double) throws(RegistryError) {
        let production = state.isProduction(key)
        let serving = state.loaded[key] != nil
        let verdict = ArtifactIntegrity.judge(model: key.model, version: key.version, recorded: record.sha256, found: digest.hex,
                                              loaded: serving, production: production, occasion: .scan)
        var updated = record
        updated.mtime = observation.mtime
        updated.updatedAt = now
        switch verdict {
        case .intact:
            updated.size = observation.size
            updated.fileSize = nil
            var event: EventDraft?
            if record.file == .changed {
                // The admitted bytes are back (an operator restored the file).
                updated.file = .present
                updated.reason = "artifact restored with the admitted bytes"
            }
            if record.state == .missing {
                updated.reason = "artifact reappeared with the same bytes"
                updated.state = serving ? (production ? .live : .ready) : .retired
                event = EventDraft(action: "reappear", model: key.model, version: key.version, before: "missing", after: updated.state.rawValue, reason: updated.reason)
            }
            let restoredBytes = record.file == .changed
            _ = try command("reconcile") { draft in
                draft.save(updated, event: event)
                if restoredBytes {
                    draft.log(.notice, "artifact restored with the admitted bytes", [("model.name", key.model), ("model.version", String(key.version))])
                }
            }
        case .serveFromMemory(let reason):
            let newBytes = try bytesNotYetRecorded(key, record, path: observation.path)
            // `size` stays the admitted bytes', which are what serves.
            updated.fileSize = observation.size
            updated.file = .changed
            updated.reason = reason
            _ = try command("reconcile") { draft in
                if newBytes { draft.recordQuarantinedBytes(key, digest, path: observation.path, reason: reason) }
                draft.save(updated)
            }
        case .quarantine(let unload, let reason):
            let newBytes = try bytesNotYetRecorded(key, record, path: observation.path)
            updated.size = observation.size
            updated.fileSize = nil
            updated.file = .changed
            _ = try command("reconcile") { draft in
                if newBytes { draft.recordQuarantinedBytes(key, digest, path: observation.path, reason: reason) }
                if record.state != .quarantined {
                    updated.state = .quarantined
                    updated.reason = reason
                    draft.save(updated, event: EventDraft(action: "quarantine", model: key.model, version: key.version, before: record.state.rawValue,
                                                          after: "quarantined", reason: reason))
                } else {
                    draft.save(updated)
                }
                if unload {
                    draft.unload(key)
                    draft.log(.error, "changed bytes under a loaded version that is not production; unloaded",
                              [("model.name", key.model), ("model.version", String(key.version))])
                }
            }
        }
    }

    /// Records how production's reload after its file came back ended (on the queue).
    func finishReappearance(_ job: LoadJob) {
        let key = job.key
        guard var updated = state.records[key] else { return }
        do throws(RegistryError) {
            switch job.harness.state {
            case .ready:
                let version = loadedVersion(of: job)
                if let observation = job.observation {
                    updated.mtime = observation.mtime
                    updated.size = observation.size
                }
                updated.fileSize = nil
                updated.file = .present
                updated.state = state.isProduction(key) ? .live : .ready
                updated.reason = "artifact reappeared with the same bytes; production loaded again"
                updated.updatedAt = clock.now()
                let reappeared = updated
                _ = try command("reappear") { draft in
                    draft.install(key, version)
                    draft.save(reappeared, event: EventDraft(action: "reappear", model: key.model, version: key.version, before: "missing",
                                                             after: reappeared.state.rawValue, reason: reappeared.reason))
                    draft.log(.notice, "production reappeared and was loaded again", [("model.name", key.model), ("model.version", String(key.version))])
                }
            case .failed where job.changedBytes != nil:
                if let observation = job.observation {
                    try reconcileHashed(key, updated, observation, digest: job.changedBytes!, now: clock.now())
                }
            case .failed, .refused:
                // Left missing, with its identity unchanged: the next scan tries again.
                log.error("production reappeared but could not be loaded; the next scan tries again",
                          ["model.name": key.model, "model.version": key.version, "error": job.problem])
            case .deferred, .abandoned, .new, .checking, .awaitingRoom, .loading:
                break
            }
        } catch {
            log.error("cannot record a reappeared version", ["model.name": key.model, "model.version": key.version, "error": error.message])
        }
    }

    /// Quarantines a version whose file holds other bytes than the admitted ones
    /// (``CommandDraft/quarantineChangedBytes(_:found:path:reason:identity:)``), as one command.
    func quarantineChangedBytes(_ key: Key, found digest: (hex: String, size: Int64), path: String, reason: String) throws(RegistryError) {
        let identity = ModelDirectory.identity(of: path).map { (size: $0.size, mtime: $0.mtime) }
        _ = try command("quarantine") { draft in
            draft.quarantineChangedBytes(key, found: digest, path: path, reason: reason, identity: identity)
        }
    }

    /// Whether bytes found under a known version still need recording in the quarantine table:
    /// once per file, so a later scan or verify of the same file (its identity recorded) does
    /// not record them again.
    func bytesNotYetRecorded(_ key: Key, _ record: VersionRecord, path: String) throws(RegistryError) -> Bool {
        let identity = ModelDirectory.identity(of: path)
        let same = identity.map { $0.size == record.identitySize && $0.mtime == record.mtime } ?? false
        guard same else { return true }
        return try catalog.quarantineCount(model: key.model, version: key.version) == 0
    }
}
