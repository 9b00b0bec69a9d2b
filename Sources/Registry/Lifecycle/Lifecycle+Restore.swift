import Foundation

/// Startup: the catalog back into memory, every artifact that should serve re-hashed.
extension Lifecycle {
    // MARK: Restore

    /// Loads the catalog into memory, re-hashes every known artifact (catching files changed
    /// while the daemon was down) and reloads the versions that were serving.
    func restore() throws(RegistryError) {
        for var record in try catalog.versions() {
            // The model root moved (a new mount point, a changed `model_root`): a version lives
            // at its place under the root in force, and is re-hashed there below like any other,
            // so different bytes under its number are quarantined, never served.
            let path = directory.artifactPath(model: record.model, version: record.version)
            if record.path != path {
                log.notice("model root moved; artifact path updated", ["model.name": record.model, "model.version": record.version,
                                                                          "path.before": record.path, "path": path])
                record.path = path
                try catalog.save(record, event: nil)
            }
            records[Key(model: record.model, version: record.version)] = record
        }
        for model in Set(records.keys.map(\.model)) {
            aliases[model] = try catalog.aliases(model: model)
        }
        for (model, spec) in try catalog.routes() {
            guard let route = RouteSpec.parse(spec) else {
                log.error("stored route is unreadable; production serves", ["model.name": model, "spec": spec])
                continue
            }
            splits[model] = route.split
            shadows[model] = route.shadow
        }
        try restoreProductionHistory()
        try restoreRollouts()
        for (key, record) in records.sorted(by: { $0.key < $1.key }) {
            switch record.state {
            case .verifying, .loading, .discovered:
                // Interrupted by a crash: start admission again from scratch.
                records[key] = nil
                continue
            case .failed, .quarantined, .retired, .missing:
                continue
            case .ready, .candidate, .live, .shadow:
                break
            }
            guard let identity = ModelDirectory.identity(of: record.path) else {
                try transition(key, to: .missing, reason: "artifact '\(record.path)' is gone (found at startup)", action: "missing")
                continue
            }
            let digest: (hex: String, size: Int64)
            do throws(RegistryError) { digest = try SHA256.file(at: record.path) } catch {
                try transition(key, to: .failed, reason: error.message, action: "fail")
                continue
            }
            if case .quarantine(_, let reason) = ArtifactIntegrity.judge(model: key.model, version: key.version, recorded: record.sha256, found: digest.hex,
                                                                          loaded: false, production: false, occasion: .startup) {
                try catalog.quarantine(model: key.model, version: key.version, sha256: digest.hex, size: digest.size, path: record.path, reason: reason)
                try transition(key, to: .quarantined, reason: reason, action: "quarantine")
                log.error("artifact changed while down; version quarantined", ["model.name": key.model, "model.version": key.version, "sha256": digest.hex])
                // The quarantined file's identity, so that the first scan does not quarantine
                // the same bytes again.
                if var updated = records[key] {
                    updated.size = identity.size
                    updated.mtime = identity.mtime
                    updated.file = .changed
                    try catalog.save(updated, event: nil)
                    records[key] = updated
                }
                continue
            }
            do throws(RegistryError) {
                loaded[key] = try loadChecked(key, record, sha256: digest.hex, size: digest.size)
                var updated = record
                updated.mtime = identity.mtime
                records[key] = updated
                log.info("version restored", ["model.name": key.model, "model.version": key.version, "state": record.state.rawValue])
            } catch {
                try transition(key, to: .failed, reason: error.message, action: "fail")
            }
        }
        publish()
    }
}
