import Foundation

/// Writing a command's changes: the one place where rows that a command changes are written.
extension Catalog {
    /// Writes `writes` in order in one transaction stamped `time`: all of them or, on a failure
    /// (a full disk) or a crash, none. `beforeCommit` runs last inside the transaction (a fault
    /// injection point). Returns one receipt per write.
    @discardableResult
    public func commit(_ writes: [CatalogWrite], at time: Double, beforeCommit: () -> Void = {}) throws(RegistryError) -> [WriteReceipt] {
        guard !writes.isEmpty else { return [] }
        return try write { db throws(RegistryError) -> [WriteReceipt] in
            var receipts: [WriteReceipt] = []
            receipts.reserveCapacity(writes.count)
            for change in writes { receipts.append(try Catalog.apply(change, at: time, in: db)) }
            beforeCommit()
            return receipts
        }
    }

    /// One write inside the caller's transaction.
    static func apply(_ change: CatalogWrite, at now: Double, in db: Database) throws(RegistryError) -> WriteReceipt {
        switch change {
        case .saveVersion(let record, let event):
            try db.run("INSERT OR IGNORE INTO models(name, created_at) VALUES (?, ?)", [.text(record.model), .double(record.firstSeen)])
            try db.run(
                """
                INSERT INTO versions(\(Catalog.versionColumns)) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
                ON CONFLICT(model, version) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,
                  path = excluded.path, mtime = excluded.mtime, state = excluded.state, reason = excluded.reason,
                  manifest = excluded.manifest, signature_status = excluded.signature_status,
                  signature_key = excluded.signature_key, updated_at = excluded.updated_at
                """,
                [.text(record.model), .int(Int64(record.version)), .optional(record.sha256), record.size.map { .int($0) } ?? .null,
                 .text(record.path), record.mtime.map { .double($0) } ?? .null, .text(record.state.rawValue), .text(record.reason),
                 .optional(record.manifest), .text(record.signatureStatus), .optional(record.signatureKey),
                 .double(record.firstSeen), .double(record.updatedAt)])
            return WriteReceipt(eventID: try event.map { e throws(RegistryError) in try Catalog.append(e, at: now, in: db) })
        case .setState(let model, let version, let state, let reason, let event):
            try update([StateChange(version, state, reason)], of: model, at: now, in: db)
            return WriteReceipt(eventID: try Catalog.append(event, at: now, in: db))
        case .setAlias(let model, let alias, let version, let states, let event):
            if let version {
                try db.run(
                    "INSERT INTO aliases(model, alias, version, updated_at) VALUES (?,?,?,?) ON CONFLICT(model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
                    [.text(model), .text(alias), .int(Int64(version)), .double(now)])
            } else {
                try db.run("DELETE FROM aliases WHERE model = ? AND alias = ?", [.text(model), .text(alias)])
            }
            try update(states, of: model, at: now, in: db)
            return WriteReceipt(eventID: try Catalog.append(event, at: now, in: db))
        case .setRoute(let model, let spec, let states, let event):
            if let spec {
                try db.run(
                    "INSERT INTO routes(model, spec, updated_at) VALUES (?,?,?) ON CONFLICT(model) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
                    [.text(model), .text(spec), .double(now)])
            } else {
                try db.run("DELETE FROM routes WHERE model = ?", [.text(model)])
            }
            try update(states, of: model, at: now, in: db)
            return WriteReceipt(eventID: try Catalog.append(event, at: now, in: db))
        case .saveRollout(let r, let event):
            let plan = String(decoding: (try? JSONEncoder().encode(r.plan)) ?? Data("{}".utf8), as: UTF8.self)
            let window = RolloutWindow(note: r.note, stepStartedAt: r.stepStartedAt, canary: r.canary, baseline: r.baselineStats)
            let windowText = String(decoding: (try? JSONEncoder().encode(window)) ?? Data("{}".utf8), as: UTF8.self)
            var id = r.id
            if id == 0 {
                try db.run(
                    "INSERT INTO rollouts(model, version, baseline, plan, step, state, window, started_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    [.text(r.model), .int(Int64(r.version)), .int(Int64(r.baseline)), .text(plan), .int(Int64(r.step)), .text(r.state.rawValue),
                     .text(windowText), .double(r.startedAt), .double(now)])
                id = try db.scalarInt("SELECT last_insert_rowid()") ?? 0
            } else {
                try db.run("UPDATE rollouts SET step = ?, state = ?, window = ?, updated_at = ? WHERE id = ?",
                           [.int(Int64(r.step)), .text(r.state.rawValue), .text(windowText), .double(now), .int(id)])
            }
            return WriteReceipt(eventID: try event.map { e throws(RegistryError) in try Catalog.append(e, at: now, in: db) }, rowID: id)
        case .quarantine(let model, let version, let sha256, let size, let path, let reason):
            try db.run(
                "INSERT INTO quarantine(model, version, sha256, size, path, seen_at, reason) VALUES (?,?,?,?,?,?,?)",
                [.text(model), .int(Int64(version)), .text(sha256), .int(size), .text(path), .double(now), .text(reason)])
            return WriteReceipt(eventID: try Catalog.append(change.event!, at: now, in: db))
        }
    }

    private static func update(_ states: [StateChange], of model: String, at now: Double, in db: Database) throws(RegistryError) {
        for change in states {
            try db.run(
                "UPDATE versions SET state = ?, reason = ?, updated_at = ? WHERE model = ? AND version = ?",
                [.text(change.state.rawValue), .text(change.reason), .double(now), .text(model), .int(Int64(change.version))])
        }
    }
}
