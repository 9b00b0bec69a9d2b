import Foundation

/// Startup: the catalog back into memory, every artifact that should serve re-hashed.
extension Lifecycle {
    // MARK: Restore

    /// Loads the catalog into memory, re-hashes every known artifact (catching files changed
    /// while the daemon was down) and reloads the versions that were serving.
    func restore() throws(RegistryError) {
        var restoring = RegistryState()
        var moved: [VersionRecord] = []
        for var record in try catalog.versions() {
            // The model root moved (a new mount point, a changed `model_root`): a version lives
            // at its place under the root in force, and is re-hashed there below like any other,
            // so different bytes under its number are quarantined, never served.
            switch record.state {
            case .verifying, .loading, .discovered:
                // Interrupted by a crash: admitted again from scratch by the first scan, whose
                // `discover` row replaces this one.
                continue
            case .failed, .quarantined, .retired, .missing, .ready, .candidate, .live, .shadow:
                break
            }
            let path = directory.artifactPath(model: record.model, version: record.version, file: (record.path as NSString).lastPathComponent)
            if record.path != path {
                log.notice("model root moved; artifact path updated", ["model.name": record.model, "model.version": record.version,
                                                                          "path.before": record.path, "path": path])
                record.path = path
                moved.append(record)
            }
            restoring.records[Key(model: record.model, version: record.version)] = record
        }
        for model in Set(restoring.records.keys.map(\.model)) {
            restoring.aliases[model] = try catalog.aliases(model: model)
        }
        for (model, spec) in try catalog.routes() {
            guard let route = RouteSpec.parse(spec) else {
                log.error("stored route is unreadable; production serves", ["model.name": model, "spec": spec])
                continue
            }
            restoring.splits[model] = route.split
            restoring.shadows[model] = route.shadow
        }
        restoring.productionHistory = try restoreProductionHistory()
        restoring.rollouts = try restoreRollouts()
        // The catalog as read is the state in force (the one assignment outside a command).
        state = restoring
        if !moved.isEmpty {
            _ = try command("restore") { draft in for record in moved { draft.save(record) } }
        }
        // Production first, then what an alias, split or shadow points at, then the rest: under
        // `budget_first` what matters most is loaded while there is room.
        func rank(_ key: Key) -> Int {
            state.isProduction(key) ? 0 : state.protected(key.model).contains(key.version) ? 1 : 2
        }
        for (key, record) in state.records.sorted(by: { (rank($0.key), $0.key) < (rank($1.key), $1.key) }) {
            guard record.state.isServable else { continue }
            guard ModelDirectory.identity(of: record.path) != nil else {
                try transition(key, to: .missing, reason: "artifact '\(record.path)' is gone (found at startup)", action: "missing")
                continue
            }
            // Re-hashed and loaded on the loader thread, through the memory budget; the queue
            // stays free, so the control API and /metrics answer meanwhile.
            beginLoad(LoadJob(key: key, cause: .restore, record: record))
        }
        restored = true
        publish()
    }
}

extension Lifecycle {
    /// Records how a restored version's load ended (on the queue).
    func finishRestore(_ job: LoadJob) {
        let key = job.key
        do throws(RegistryError) {
            // Something else decided about the version while it loaded (verify quarantined it, a
            // scan found it gone): that decision stands.
            guard state.records[key]?.state == job.record.state, state.loaded[key] == nil else {
                log.notice("restored version changed state while it loaded; not installed", ["model.name": key.model, "model.version": key.version,
                                                                                                "state": state.records[key]?.state.rawValue ?? "gone"])
                publish()
                return
            }
            switch job.harness.state {
            case .ready:
                let version = loadedVersion(of: job)
                // Residency and the identity read before the hash (a later change is seen by the
                // next scan) are facts of this process: a command with no write.
                _ = try command("restored") { draft in
                    draft.install(key, version)
                    if let identity = job.checkedIdentity {
                        draft.state.records[key]?.size = identity.size
                        draft.state.records[key]?.mtime = identity.mtime
                    }
                    draft.state.records[key]?.manifestStamp = job.manifestStamp
                }
                log.info("version restored", ["model.name": key.model, "model.version": key.version, "state": job.record.state.rawValue])
            case .failed:
                if let digest = job.changedDigest, let refusal = job.refusal {
                    let changed = digest.changedBytes(job.record)
                    try quarantineChangedBytes(key, found: (changed.hex, changed.size), path: changed.path, reason: refusal.reason)
                } else {
                    try transition(key, to: .failed, reason: job.problem, action: "fail")
                }
            case .refused:
                let reason = "not loaded at startup: \(job.budgetMessage ?? "over the memory budget") (budget_first)"
                try transition(key, to: .retired, reason: reason, action: "retire")
                log.error("version not restored: it does not fit the memory budget", ["model.name": key.model, "model.version": key.version,
                                                                                         "detail": job.budgetMessage ?? ""])
            case .deferred where job.attempt < 3:
                // Its file changed between the check and the load: checked and loaded again.
                let retry = LoadJob(key: key, cause: .restore, record: job.record)
                retry.attempt = job.attempt + 1
                beginLoad(retry)
            case .deferred:
                try transition(key, to: .failed, reason: "not loaded at startup: \(job.problem) (3 times)", action: "fail")
            case .abandoned, .new, .checking, .awaitingRoom, .loading:
                break
            }
        } catch {
            log.error("cannot record a restored version", ["model.name": key.model, "model.version": key.version, "error": error.message])
        }
        publish()
    }
}
