/// Aliases and route specs: which versions serve a model, each change with its event.
extension Catalog {
    /// The model's aliases: alias name to version.
    public func aliases(model: String) throws(RegistryError) -> [String: Int] {
        try read { db throws(RegistryError) in
            var out: [String: Int] = [:]
            try db.query("SELECT alias, version FROM aliases WHERE model = ?", [.text(model)]) { row in
                out[row.text(0)!] = Int(row.int(1)!)
            }
            return out
        }
    }

    /// Points `alias` at `version` (or removes it when `version` is nil), optionally changing
    /// version states at the same time, and appends `event`, in one transaction stamped `time`
    /// (or now).
    @discardableResult
    public func setAlias(
        model: String, alias: String, version: Int?, states: [(version: Int, state: VersionState, reason: String)] = [],
        at time: Double? = nil, event: EventDraft
    ) throws(RegistryError) -> Int64 {
        try write { db throws(RegistryError) in
            let now = time ?? clock.now()
            if let version {
                try db.run(
                    "INSERT INTO aliases(model, alias, version, updated_at) VALUES (?,?,?,?) ON CONFLICT(model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
                    [.text(model), .text(alias), .int(Int64(version)), .double(now)])
            } else {
                try db.run("DELETE FROM aliases WHERE model = ? AND alias = ?", [.text(model), .text(alias)])
            }
            try Catalog.update(states, of: model, at: now, in: db)
            return try Catalog.append(event, at: now, in: db)
        }
    }

    private static func update(_ states: [(version: Int, state: VersionState, reason: String)], of model: String, at now: Double, in db: Database) throws(RegistryError) {
        for change in states {
            try db.run(
                "UPDATE versions SET state = ?, reason = ?, updated_at = ? WHERE model = ? AND version = ?",
                [.text(change.state.rawValue), .text(change.reason), .double(now), .text(model), .int(Int64(change.version))])
        }
    }

    // MARK: Routes

    /// Every model's route spec (JSON text), by model.
    public func routes() throws(RegistryError) -> [String: String] {
        try read { db throws(RegistryError) in
            var out: [String: String] = [:]
            try db.query("SELECT model, spec FROM routes") { row in out[row.text(0)!] = row.text(1)! }
            return out
        }
    }

    /// Stores (or with nil removes) a model's route spec and appends `event`, in one transaction.
    @discardableResult
    public func setRoute(model: String, spec: String?, states: [(version: Int, state: VersionState, reason: String)] = [], at time: Double? = nil,
                         event: EventDraft) throws(RegistryError) -> Int64 {
        try write { db throws(RegistryError) in
            let now = time ?? clock.now()
            if let spec {
                try db.run(
                    "INSERT INTO routes(model, spec, updated_at) VALUES (?,?,?) ON CONFLICT(model) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
                    [.text(model), .text(spec), .double(now)])
            } else {
                try db.run("DELETE FROM routes WHERE model = ?", [.text(model)])
            }
            try Catalog.update(states, of: model, at: now, in: db)
            return try Catalog.append(event, at: now, in: db)
        }
    }
}
