/// Model versions and the bytes quarantined under them.
extension Catalog {
    static let versionColumns =
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
        try commit([.saveVersion(record, event: event)], at: clock.now())
    }

    /// Records bytes that differ from a known version's artifact, with an event.
    public func quarantine(model: String, version: Int, sha256: String, size: Int64, path: String, reason: String) throws(RegistryError) {
        try commit([.quarantine(model: model, version: version, sha256: sha256, size: size, path: path, reason: reason)], at: clock.now())
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
        try commit([.setState(model: model, version: version, state: state, reason: reason, event: event)], at: time ?? clock.now())
    }
}
