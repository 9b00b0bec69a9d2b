import Foundation
import Synchronization

/// `rollback`: production back to a version that served before. A pointer swap when the target
/// is loaded; otherwise its load (check, budget, load: a ``LoadJob``) runs on the loader thread
/// while the command waits off the queue, so the control API and /metrics answer meanwhile.
extension Lifecycle {
    /// Points production back at `target`, or at the previous production. A pointer swap when
    /// the target is still loaded; otherwise it is re-hashed and loaded first, and the outcome
    /// says so.
    public func rollback(model: String, to target: Int?, force: Bool = false, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        // The target is chosen and, when it is not loaded, its load started in one turn of the
        // queue: no other command can load or promote it in between.
        let (key, wait) = try onQueue { () throws(RegistryError) -> (Key, RollbackLoad?) in
            let (key, _) = try state.rollbackTarget(model: model, to: target)
            return (key, state.loaded[key] == nil ? try startRollbackLoad(key) : nil)
        }
        if let wait { try wait.result(key) }
        defer {
            if wait != nil {
                // Loaded for this command and not made production (another command moved
                // production meanwhile, or the switch failed): retention decides about it again.
                queue.sync {
                    do throws(RegistryError) {
                        _ = try command("rollback-release") { draft in
                            draft.state.reserved.remove(key)
                            draft.retire(model: model)
                        }
                    } catch {
                        log.error("cannot record the retirement of a version loaded for a rollback", ["model.name": model, "error": error.message])
                    }
                }
            }
        }
        return try outcome("rollback") { draft throws(RegistryError) in
            try draft.rollback(to: key, loadedFirst: wait != nil, force: force, actor: actor, reason: reason)
        }
    }

    /// A rollback's load in flight, which the command waits for off the queue.
    final class RollbackLoad: Sendable {
        let done = DispatchSemaphore(value: 0)
        let ended = Mutex<(state: LoadHarness.State, problem: String, quarantined: Bool)?>(nil)

        /// Waits for the load; throws why the rollback cannot go on.
        func result(_ key: Key) throws(RegistryError) {
            done.wait()
            let (state, problem, quarantined) = ended.withLock { $0 } ?? (.abandoned, "registryd is stopping", false)
            switch state {
            case .ready: return
            case .refused: throw RegistryError(.conflict, "model '\(key.model)' version \(key.version) cannot be loaded for the rollback: \(problem)")
            case .abandoned: throw RegistryError(.unavailable, "registryd is stopping; the rollback of model '\(key.model)' did not happen")
            case .deferred: throw RegistryError(.conflict, "model '\(key.model)' version \(key.version): \(problem); retry")
            default:
                throw RegistryError(quarantined ? .verificationFailed : .modelFailure,
                                    quarantined ? problem : "model '\(key.model)' version \(key.version): \(problem)")
            }
        }
    }

    /// Starts loading a retired version for a rollback (on the queue). Its bytes must still be
    /// the admitted ones (other bytes are quarantined), and it must fit the memory budget as any
    /// load must.
    private func startRollbackLoad(_ key: Key) throws(RegistryError) -> RollbackLoad {
        if let other = jobs[key] {
            throw RegistryError(.conflict, "model '\(key.model)' version \(key.version) is already being loaded (\(other.harness.cause.rawValue)); retry")
        }
        let wait = RollbackLoad()
        beginLoad(LoadJob(key: key, cause: .rollback, record: state.records[key]!) { [weak self] job in
            let quarantined = self?.state.records[job.key]?.state == .quarantined
            wait.ended.withLock { $0 = (job.harness.state, job.problem, quarantined) }
            wait.done.signal()
        })
        return wait
    }

    /// Records how a rollback's load ended (on the queue): loaded, it is `ready` and reserved
    /// for the command; with changed bytes, quarantined.
    func finishRollbackLoad(_ job: LoadJob) {
        let key = job.key
        do throws(RegistryError) {
            switch job.harness.state {
            case .ready:
                // Installed only over the state it was loaded for: if something else decided
                // about the version meanwhile (verify quarantined it, a scan found it gone),
                // that decision stands, and the command's switch finds it not loaded.
                guard state.loaded[key] == nil, state.records[key]?.state == .retired else {
                    log.notice("version changed state while it loaded for a rollback; not installed",
                               ["model.name": key.model, "model.version": key.version, "state": state.records[key]?.state.rawValue ?? "gone"])
                    return
                }
                let version = loadedVersion(of: job)
                _ = try command("rollback-load") { draft in
                    draft.install(key, version)
                    draft.state.records[key]?.manifestStamp = job.manifestStamp
                    draft.state.reserved.insert(key)
                    draft.transition(key, to: .ready, reason: String(format: "loaded again for a rollback in %.3f s", job.loadSeconds), action: "ready")
                }
            case .failed where job.changedDigest != nil:
                let changed = job.changedDigest!.changedBytes(job.record)
                try quarantineChangedBytes(key, found: (changed.hex, changed.size), path: changed.path, reason: job.problem)
            case .failed, .refused, .deferred, .abandoned, .new, .checking, .awaitingRoom, .loading:
                break
            }
        } catch {
            log.error("cannot record a rollback's load", ["model.name": key.model, "model.version": key.version, "error": error.message])
        }
    }
}

extension RegistryState {
    /// The version a rollback goes to, and the production it replaces.
    func rollbackTarget(model: String, to target: Int?) throws(RegistryError) -> (VersionKey, current: Int) {
        guard knows(model: model) else { throw RegistryError(.notFound, "model '\(model)' not found") }
        guard let current = production(of: model) else {
            throw RegistryError(.conflict, "model '\(model)' has no production version to roll back from")
        }
        let version: Int
        if let target {
            version = target
        } else {
            let history = productionHistory[model] ?? []
            let servable = history.reversed().first { candidate in
                guard candidate != current, let state = records[VersionKey(model: model, version: candidate)]?.state else { return false }
                return state.isServable || state == .retired
            }
            guard let servable else {
                throw RegistryError(.conflict, "model '\(model)' has no previous production version to roll back to; name one with --to VERSION")
            }
            version = servable
        }
        let key = try existingKey(model: model, version: version)
        guard version != current else {
            throw RegistryError(.conflict, "model '\(model)' version \(version) is already production")
        }
        let record = records[key]!
        switch record.state {
        case .failed, .quarantined, .missing, .discovered, .verifying, .loading:
            let why = record.reason.isEmpty ? "" : " (\(record.reason))"
            throw RegistryError(.conflict, "model '\(model)' version \(version) is \(record.state.rawValue)\(why); it cannot serve")
        case .ready, .candidate, .live, .shadow, .retired:
            return (key, current)
        }
    }
}
