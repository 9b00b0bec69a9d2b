import Foundation
import Runtime

/// A new artifact's way in (its ``LoadJob`` does the steps): the events recorded at each step,
/// and the admission policy applied once it is ready.
extension Lifecycle {
    /// Records a complete, new artifact and starts its admission.
    func admit(_ key: Key, _ observation: ArtifactObservation) {
        let now = clock.now()
        let record = VersionRecord(model: key.model, version: key.version, size: observation.size, path: observation.path,
                                   mtime: observation.mtime, state: .verifying, firstSeen: now, updatedAt: now)
        do throws(RegistryError) {
            // Serving learns the version exists: pinned requests get 503 "verifying", not 404.
            _ = try command("discover") { draft in
                draft.save(record, event: EventDraft(action: "discover", model: key.model, version: key.version, after: "verifying"))
            }
        } catch {
            log.error("cannot record a new version", ["model.name": key.model, "model.version": key.version, "error": error.message])
            return
        }
        beginLoad(LoadJob(key: key, cause: .admission, record: record, observation: observation))
    }

    /// Records that a new artifact passed verification and is about to load (on the queue).
    func recordVerified(_ job: LoadJob) {
        let verdict = job.verdict!
        var record = job.record
        record.sha256 = verdict.sha256
        record.size = verdict.size
        record.manifest = verdict.manifestText
        record.signatureStatus = verdict.signatureStatus
        record.signatureKey = verdict.signatureKey
        record.state = .loading
        record.updatedAt = clock.now()
        let verified = record
        do throws(RegistryError) {
            _ = try command("verify") { draft in
                draft.save(verified, event: EventDraft(action: "verify", model: job.key.model, version: job.key.version, before: "verifying",
                                                       after: "loading", reason: "sha256 \(verdict.sha256), signature \(verdict.signatureStatus)"))
            }
        } catch {
            log.error("cannot record verification", ["error": error.message])
        }
        job.record = record
    }

    /// Records how a new artifact's admission ended (on the queue).
    func finishAdmission(_ job: LoadJob) {
        let key = job.key
        switch job.harness.state {
        case .ready:
            finishLoaded(key, job.record, verdict: job.verdict!, version: loadedVersion(of: job), seconds: job.loadSeconds,
                         measuredBytes: job.measuredBytes, twin: job.twin)
        case .deferred:
            // Forgotten in memory (the next scan admits it afresh), recorded as `discovered`.
            do throws(RegistryError) {
                _ = try command("defer") { draft in
                    draft.write(.setState(model: key.model, version: key.version, state: .discovered, reason: "still being written",
                                          event: EventDraft(action: "defer", model: key.model, version: key.version, before: job.record.state.rawValue,
                                                            after: "discovered", reason: job.loadError ?? "file changed while it was hashed")))
                    draft.state.records[key] = nil
                }
            } catch {
                log.error("cannot record a deferred version", ["model.name": key.model, "model.version": key.version, "error": error.message])
                // Forgotten all the same (a command with no write cannot fail): the next scan
                // admits it afresh, and its `discover` row replaces the stale one.
                _ = try? command("forget") { draft in draft.state.records[key] = nil }
            }
            scheduleRescan(after: 0.05)
        case .failed:
            finishFailed(key, job.record, job.refusal ?? ArtifactVerifier.Failure(state: .failed, reason: job.problem))
        case .refused:
            finishFailed(key, job.record, ArtifactVerifier.Failure(state: .failed, reason: job.budgetMessage ?? job.problem))
        case .abandoned, .new, .checking, .awaitingRoom, .loading:
            // Shut down meanwhile: the next start admits it again from the start.
            break
        }
    }

    func finishFailed(_ key: Key, _ record: VersionRecord, _ failure: ArtifactVerifier.Failure) {
        var record = record
        let before = record.state
        record.state = failure.state
        record.reason = failure.reason
        record.sha256 = record.sha256 ?? failure.sha256
        record.size = failure.size ?? record.size
        record.updatedAt = clock.now()
        let failed = record
        do throws(RegistryError) {
            _ = try command("fail") { draft in
                draft.save(failed, event: EventDraft(action: failure.state == .quarantined ? "quarantine" : "fail", model: key.model,
                                                     version: key.version, before: before.rawValue, after: failure.state.rawValue, reason: failure.reason))
            }
        } catch {
            log.error("cannot record a failed version", ["error": error.message])
        }
        log.error("version not admitted", ["model.name": key.model, "model.version": key.version, "state": failure.state.rawValue, "reason": failure.reason])
    }

    func finishLoaded(_ key: Key, _ record: VersionRecord, verdict: ArtifactVerifier.Verdict, version: LoadedVersion, seconds: Double,
                      measuredBytes: Int64?, twin: LoadedVersion?) {
        var record = record
        let productionVersion = state.production(of: key.model)
        let hasProduction = productionVersion.map { state.loaded[Key(model: key.model, version: $0)] != nil } ?? false
        let outcome = AdmissionPolicy.outcome(policy: config.policy(for: key.model), hasServingProduction: hasProduction)
        record.state = .ready
        record.reason = twin.map { "same artifact as '\($0.model)' version \($0.version) (sha256 \(verdict.sha256))" } ?? ""
        record.updatedAt = clock.now()
        let event = EventDraft(action: "ready", model: key.model, version: key.version, before: "loading", after: "ready",
                               reason: record.reason.isEmpty
                                ? String(format: "loaded and warmed up in %.3f s; resident memory +%@ MiB (estimate %@ MiB)", seconds,
                                         measuredBytes.map(MemoryBudget.mebibytes) ?? "?", MemoryBudget.mebibytes(version.estimatedBytes))
                                : record.reason)
        let ready = record
        do throws(RegistryError) {
            // Ready and what the policy does with it (production, candidate) commit together.
            _ = try command("ready") { draft throws(RegistryError) in
                draft.log(.notice, "version ready", [("model.name", key.model), ("model.version", String(key.version)),
                                                     ("sha256", String(verdict.sha256.prefix(12))), ("load.seconds", String(format: "%.3f", seconds))])
                try draft.admitLoaded(key, ready, version, outcome: outcome, hadProduction: hasProduction, event: event)
            }
        } catch {
            // The session is dropped with the draft; the version stays `loading` in the catalog,
            // which the next start admits again from the start.
            log.error("cannot record a loaded version", ["model.name": key.model, "model.version": key.version, "error": error.message])
        }
    }
}
