import Foundation

/// `verify`: every recorded artifact that should serve, hashed again on demand.
extension Lifecycle {
    /// One version's verification: its hash when the file could be read, and the problem found.
    public typealias VerifyResult = (model: String, version: Int, sha256: String?, problem: String?)

    /// Re-hashes every recorded artifact that should serve. A changed artifact is quarantined
    /// and unloaded, except production, whose loaded session (the admitted bytes) keeps serving
    /// so that the model is not left answering 503 and says its file changed; a vanished or
    /// unreadable one is marked missing, and a loaded one keeps serving from memory.
    ///
    /// The hashing runs on the calling thread (the request's), never on the queue; what it found
    /// is judged on the queue against each record as it is then (``ArtifactIntegrity``). Not on
    /// the loader thread either: there an operator's `verify` would wait behind a model load in
    /// flight, for minutes with a large model.
    public func verifyArtifacts(model: String? = nil, actor: String) throws(RegistryError) -> [VerifyResult] {
        let candidates = try onQueue { () throws(RegistryError) -> [(Key, VersionRecord)] in
            if let model, !state.knows(model: model) { throw RegistryError(.notFound, "model '\(model)' not found") }
            // A version being loaded or hashed is checked by its load (its identity is read again
            // around it): verify leaves it to that.
            return state.records.sorted(by: { $0.key < $1.key }).filter { key, record in
                (model == nil || key.model == model) && (record.state.isServable || record.state == .retired) && record.sha256 != nil
                    && jobs[key] == nil && !checking.contains(key)
            }
        }
        var found: [(Key, VersionRecord, (size: Int64, mtime: Double, inode: UInt64)?, Result<(hex: String, size: Int64), RegistryError>)] = []
        for (key, record) in candidates {
            // Read before hashing: bytes written after the hash must not pass as checked.
            let identity = ModelDirectory.identity(of: record.path)
            do throws(RegistryError) { found.append((key, record, identity, .success(try SHA256.file(at: record.path)))) } catch {
                found.append((key, record, identity, .failure(error)))
            }
        }
        return try onQueue { () throws(RegistryError) -> [VerifyResult] in
            var results: [VerifyResult] = []
            for (key, seen, identity, digest) in found {
                // A version whose record changed meanwhile (quarantined by a scan, retired, a
                // new admission) is reported as found, and judged by whoever changed it.
                guard let record = state.records[key], record.sha256 == seen.sha256, record.state.isServable || record.state == .retired,
                      jobs[key] == nil, !checking.contains(key) else {
                    results.append((key.model, key.version, try? digest.get().hex, nil))
                    continue
                }
                results.append(try judgeVerified(key, record, identity: identity, digest: digest, actor: actor))
            }
            publish()
            return results
        }
    }

    /// Applies one verification finding (on the queue).
    private func judgeVerified(_ key: Key, _ record: VersionRecord, identity: (size: Int64, mtime: Double, inode: UInt64)?, digest: Result<(hex: String, size: Int64), RegistryError>,
                               actor: String) throws(RegistryError) -> VerifyResult {
        let serving = state.loaded[key] != nil
        let hashed: (hex: String, size: Int64)
        switch digest {
        case .success(let value): hashed = value
        case .failure(let error):
            // As when a scan finds the file gone: a loaded session holds the admitted bytes and
            // keeps serving; the state says the file is missing.
            let reason = "artifact '\(record.path)' cannot be read during verification: \(error.message)"
                + (serving ? "; still serving from memory" : "")
            try transition(key, to: .missing, reason: reason, action: "missing")
            log.warning("artifact unreadable during verification", ["model.name": key.model, "model.version": key.version, "serving": serving])
            return (key.model, key.version, nil, reason)
        }
        let digest = hashed
        let production = state.isProduction(key)
        switch ArtifactIntegrity.judge(model: key.model, version: key.version, recorded: record.sha256, found: digest.hex, loaded: serving,
                                       production: production, occasion: .verify(actor: actor)) {
        case .intact:
            return (key.model, key.version, digest.hex, nil)
        case .serveFromMemory(let reason):
            // Memory holds exactly what was admitted: production serves on, and says its file
            // changed. The new bytes are quarantined once per file.
            let newBytes = try bytesNotYetRecorded(key, record, path: record.path)
            var updated = record
            if let identity {
                // `size` stays the admitted bytes', which are what serves.
                updated.fileSize = identity.size
                updated.mtime = identity.mtime
            }
            updated.file = .changed
            updated.reason = reason
            let changed = updated
            _ = try command("verify") { draft in
                if newBytes { draft.recordQuarantinedBytes(key, digest, path: record.path, reason: reason) }
                draft.save(changed)
                draft.log(.error, "artifact changed on disk; production keeps serving from memory", [("model.name", key.model), ("model.version", String(key.version))])
            }
            return (key.model, key.version, digest.hex, reason)
        case .quarantine(_, let reason):
            try quarantineChangedBytes(key, found: digest, path: record.path, reason: reason)
            return (key.model, key.version, digest.hex, reason)
        }
    }
}
