/// Model versions and the bytes quarantined under them.
extension Catalog {
    private static let versionColumns =
        "model, version, sha256, size, path, mtime, state, reason, manifest, signature_status, signature_key, first_seen, updated_at"

    private static func version(from row: Row) -> VersionRecord {
        VersionRecord(
            model: row.text(0)!, version: Int(row.int(1)!), sha256: row.text(2), size: row.int(3),
            path: row.text(4)!, mtime: row.double(5), state: VersionState(rawValue: row.text(6)!) ?? .failed,
            reason: row.text(7) ?? "", manifest: row.text(8), signatureStatus: row.text(9) ?? "unsigned",
            signatureKey: row.text(10), firstSeen: row.double(11)!, updatedAt: row.double(12)!)
    }

    /// All versions, or one model's, ordered by model and version.
    public func versions(model: String? = nil) throws(RegistryError) -> [VersionRecord] {
        try read { db throws(RegistryError) in
            var out: [VersionRecord] = []
            let sql = "SELECT \(Catalog.versionColumns) FROM versions" + (model == nil ? "" : " WHERE model = ?") + " ORDER BY model, version"
            try db.query(sql, model.map { [.text($0)] } ?? []) { row in out.append(Catalog.version(from: row)) }
            return out
        }
    }

    public func version(model: String, version: Int) throws(RegistryError) -> VersionRecord? {
        try versions(model: model).first { $0.version == version }
    }

    /// Versions of any model whose artifact has this digest.
    public func versions(sha256: String) throws(RegistryError) -> [VersionRecord] {
        try read { db throws(RegistryError) in
            var out: [VersionRecord] = []
            try db.query("SELECT \(Catalog.versionColumns) FROM versions WHERE sha256 = ? ORDER BY model, version", [.text(sha256)]) {
                row in out.append(Catalog.version(from: row))
            }
            return out
        }
    }

    /// Inserts or replaces a version row, and appends `event`, in one transaction.
    public func save(_ record: VersionRecord, event: EventDraft?) throws(RegistryError) {
        try write { db throws(RegistryError) in
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
            if let event { try Catalog.append(event, at: clock.now(), in: db) }
        }
    }

    /// Records bytes that differ from a known version's artifact, with an event.
    public func quarantine(model: String, version: Int, sha256: String, size: Int64, path: String, reason: String) throws(RegistryError) {
        try write { db throws(RegistryError) in
            let now = clock.now()
            try db.run(
                "INSERT INTO quarantine(model, version, sha256, size, path, seen_at, reason) VALUES (?,?,?,?,?,?,?)",
                [.text(model), .int(Int64(version)), .text(sha256), .int(size), .text(path), .double(now), .text(reason)])
            try Catalog.append(
                EventDraft(action: "quarantine", model: model, version: version, after: sha256, reason: reason), at: now, in: db)
        }
    }

    /// How many times bytes under this version were quarantined.
    public func quarantineCount(model: String, version: Int) throws(RegistryError) -> Int {
        try read { db throws(RegistryError) in
            Int(try db.scalarInt("SELECT count(*) FROM quarantine WHERE model = ? AND version = ?", [.text(model), .int(Int64(version))]) ?? 0)
        }
    }

    /// Whether the version was ever admitted to serve (a `ready` event: loaded and servable, at
    /// least by pin). Such a version's bytes are fixed for good, even after it failed.
    public func wasAdmitted(model: String, version: Int) throws(RegistryError) -> Bool {
        try read { db throws(RegistryError) in
            try db.scalarInt("SELECT count(*) FROM events WHERE model = ? AND version = ? AND action = 'ready'",
                             [.text(model), .int(Int64(version))]) ?? 0 > 0
        }
    }

    /// Changes one version's state and appends `event`, in one transaction, stamped `time` (the
    /// caller's clock reading, so that it knows the stamp without reading the row back) or now.
    public func setState(model: String, version: Int, _ state: VersionState, reason: String, event: EventDraft, at time: Double? = nil) throws(RegistryError) {
        try write { db throws(RegistryError) in
            let now = time ?? clock.now()
            try db.run(
                "UPDATE versions SET state = ?, reason = ?, updated_at = ? WHERE model = ? AND version = ?",
                [.text(state.rawValue), .text(reason), .double(now), .text(model), .int(Int64(version))])
            try Catalog.append(event, at: now, in: db)
        }
    }
}
