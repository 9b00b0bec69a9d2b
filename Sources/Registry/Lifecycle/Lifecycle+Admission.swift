import Foundation
import Runtime

/// A new artifact's way in: verification and loading on the loader queue, results recorded
/// on the lifecycle queue.
extension Lifecycle {
    /// Starts verification of a complete, new artifact on the loader queue.
    func admit(_ key: Key, _ observation: ArtifactObservation) {
        let now = clock.now()
        let record = VersionRecord(model: key.model, version: key.version, size: observation.size, path: observation.path,
                                   mtime: observation.mtime, state: .verifying, firstSeen: now, updatedAt: now)
        do throws(RegistryError) {
            try catalog.save(record, event: EventDraft(action: "discover", model: key.model, version: key.version, after: "verifying"))
        } catch {
            log.error("cannot record a new version", ["model.name": key.model, "model.version": key.version, "error": error.message])
            return
        }
        records[key] = record
        inFlight.insert(key)
        // Serving learns the version exists: pinned requests get 503 "verifying", not 404.
        publish()
        let policy = config.policy(for: key.model)
        loaderQueue.async { [self] in
            let verdict = verifier.verify(observation, requireSignature: policy.requireSignature)
            // Written to after it looked settled: not complete after all. Try again later,
            // recording no failure.
            let identity = ModelDirectory.identity(of: observation.path)
            let stillWriting = identity == nil || identity!.size != observation.size || identity!.mtime != observation.mtime
                || (try? verdict.get().size).map { $0 != observation.size } == true
            queue.async { [self] in
                guard !stopped else { return }  // shut down meanwhile: the next start admits it
                verified(key, record, observation, verdict, stillWriting: stillWriting)
            }
        }
    }

    /// On `queue`: after hashing. Loads the version on the loader queue if it passed.
    func verified(_ key: Key, _ record: VersionRecord, _ observation: ArtifactObservation,
                          _ result: Result<ArtifactVerifier.Verdict, ArtifactVerifier.Failure>, stillWriting: Bool) {
        if stillWriting {
            inFlight.remove(key)
            records[key] = nil
            publish()
            try? catalog.setState(model: key.model, version: key.version, .discovered, reason: "still being written",
                                  event: EventDraft(action: "defer", model: key.model, version: key.version, before: "verifying", after: "discovered", reason: "file changed while it was hashed"))
            scheduleRescan(after: 0.05)
            return
        }
        let verdict: ArtifactVerifier.Verdict
        switch result {
        case .failure(let failure):
            finishFailed(key, record, failure)
            return
        case .success(let v):
            verdict = v
        }
        var record = record
        record.sha256 = verdict.sha256
        record.size = verdict.size
        record.manifest = verdict.manifestText
        record.signatureStatus = verdict.signatureStatus
        record.signatureKey = verdict.signatureKey
        record.state = .loading
        record.updatedAt = clock.now()
        do throws(RegistryError) {
            try catalog.save(record, event: EventDraft(action: "verify", model: key.model, version: key.version, before: "verifying",
                                                       after: "loading", reason: "sha256 \(verdict.sha256), signature \(verdict.signatureStatus)"))
        } catch {
            log.error("cannot record verification", ["error": error.message])
        }
        records[key] = record
        publish()
        // Identical bytes already loaded: the same artifact, the same session (under this
        // version's own provenance).
        let twin = loaded.values.first { $0.sha256 == verdict.sha256 && $0.servable is ONNXServable }
        if twin == nil, let refusal = budgetRefusal(adding: MemoryBudget.estimate(size: verdict.size), for: key.model) {
            finishFailed(key, record, ArtifactVerifier.Failure(state: .failed, reason: refusal))
            return
        }
        let loaded = record
        loaderQueue.async { [self] in
            let started = clock.now()
            let residentBefore = MemoryBudget.residentBytes()
            let outcome: Result<Session, RegistryError>
            if let twin = twin?.servable as? ONNXServable {
                outcome = .success(twin.session)
            } else {
                do throws(RegistryError) { outcome = .success(try loader.load(path: observation.path, manifest: verdict.manifest)) } catch { outcome = .failure(error) }
            }
            let seconds = clock.now() - started
            // Measured on the loader queue, the only place sessions load; serving threads may
            // allocate meanwhile, so it is a measurement, not an exact attribution.
            let residentAfter = MemoryBudget.residentBytes()
            let measured: Int64? = twin != nil ? 0 : residentBefore.flatMap { before in residentAfter.map { max($0 - before, 0) } }
            queue.async { [self] in
                guard !stopped else { return }  // shut down meanwhile: the next start admits it
                switch outcome {
                case .failure(let error):
                    finishFailed(key, loaded, ArtifactVerifier.Failure(state: .failed, reason: error.message))
                case .success(let session):
                    finishLoaded(key, loaded, verdict: verdict, session: session, seconds: seconds, measuredBytes: measured, twin: twin)
                }
            }
        }
    }

    func finishFailed(_ key: Key, _ record: VersionRecord, _ failure: ArtifactVerifier.Failure) {
        inFlight.remove(key)
        var record = record
        let before = record.state
        record.state = failure.state
        record.reason = failure.reason
        record.sha256 = record.sha256 ?? failure.sha256
        record.size = failure.size ?? record.size
        record.updatedAt = clock.now()
        do throws(RegistryError) {
            try catalog.save(record, event: EventDraft(action: failure.state == .quarantined ? "quarantine" : "fail", model: key.model,
                                                       version: key.version, before: before.rawValue, after: failure.state.rawValue, reason: failure.reason))
        } catch {
            log.error("cannot record a failed version", ["error": error.message])
        }
        records[key] = record
        log.error("version not admitted", ["model.name": key.model, "model.version": key.version, "state": failure.state.rawValue, "reason": failure.reason])
    }

    func finishLoaded(_ key: Key, _ record: VersionRecord, verdict: ArtifactVerifier.Verdict, session: Session, seconds: Double,
                              measuredBytes: Int64?, twin: LoadedVersion?) {
        inFlight.remove(key)
        var record = record
        let estimate = twin == nil ? MemoryBudget.estimate(size: verdict.size) : 0  // a twin shares its session
        let servable = ONNXServable(session: session, provenance: Provenance(model: key.model, version: key.version, sha256: verdict.sha256))
        loaded[key] = LoadedVersion(model: key.model, version: key.version, sha256: verdict.sha256, servable: servable,
                                    manifest: verdict.manifest, loadedAt: clock.now(), estimatedBytes: estimate, measuredBytes: measuredBytes)
        let productionVersion = aliases[key.model]?["production"]
        let hasProduction = productionVersion.map { loaded[Key(model: key.model, version: $0)] != nil } ?? false
        let outcome = AdmissionPolicy.outcome(policy: config.policy(for: key.model), hasServingProduction: hasProduction)
        record.state = .ready
        record.reason = twin.map { "same artifact as '\($0.model)' version \($0.version) (sha256 \(verdict.sha256))" } ?? ""
        record.updatedAt = clock.now()
        do throws(RegistryError) {
            // Ready and what the policy does with it (production, candidate) commit together.
            try atomically("ready") { () throws(RegistryError) in
                try catalog.save(record, event: EventDraft(action: "ready", model: key.model, version: key.version, before: "loading", after: "ready",
                                                           reason: record.reason.isEmpty
                                                            ? String(format: "loaded and warmed up in %.3f s; resident memory +%@ MiB (estimate %@ MiB)", seconds,
                                                                     measuredBytes.map(MemoryBudget.mebibytes) ?? "?", MemoryBudget.mebibytes(estimate))
                                                            : record.reason))
                records[key] = record
                log.notice("version ready", ["model.name": key.model, "model.version": key.version, "sha256": String(verdict.sha256.prefix(12)),
                                             "load.seconds": String(format: "%.3f", seconds)])
                switch outcome {
                case .promote:
                    _ = try promoteLocked(key, actor: EventDraft.daemon, reason: hasProduction ? "policy on_new_version=live" : "first version of the model")
                case .candidate:
                    try setAliasLocked(model: key.model, alias: "candidate", version: key.version, actor: EventDraft.daemon, reason: "policy on_new_version=candidate")
                case .ready:
                    publish()
                }
            }
        } catch {
            log.error("cannot record a loaded version", ["model.name": key.model, "model.version": key.version, "error": error.message])
            publish()
        }
    }
}
