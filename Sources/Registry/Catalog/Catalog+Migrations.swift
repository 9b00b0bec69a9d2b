/// Bringing a catalog to the schema this registryd knows.
extension Catalog {
    /// Steps that bring an older catalog to the current schema: each takes `user_version` from
    /// `to - 1` to `to`, in its own IMMEDIATE transaction. A test proves that applying them to the
    /// previous schema gives exactly `schema.sql`'s tables, indexes and triggers.
    static let migrations: [(to: Int, sql: String)] = [
        (2, Schema.statement(creatingTable: "serving_stats") + "\nPRAGMA user_version = 2;"),
    ]

    /// Applies `schema.sql` to an empty database, or the migrations to an older one; refuses a
    /// database written by a newer registryd.
    static func migrate(_ db: Database) throws(RegistryError) {
        var current: Int64 = 0
        try db.transaction { () throws(RegistryError) in
            let version = try db.scalarInt("PRAGMA user_version") ?? 0
            current = version
            guard version == 0 else {
                if version > Int64(Schema.version) {
                    throw RegistryError(
                        .database,
                        "the catalog '\(db.path)' has schema version \(version); this registryd knows \(Schema.version). Use the registryd that wrote it, or restore a backup")
                }
                return
            }
            let tables = try db.scalarInt("SELECT count(*) FROM sqlite_schema WHERE type = 'table'") ?? 0
            guard tables == 0 else {
                throw RegistryError(.database, "the catalog '\(db.path)' has tables but no schema version: it is not a registryd catalog")
            }
            try db.execute(Schema.sql)
            current = Int64(Schema.version)
        }
        for step in migrations where step.to > current {
            try db.transaction { () throws(RegistryError) in
                // Checked again inside the transaction: another process may have migrated meanwhile.
                guard try db.scalarInt("PRAGMA user_version") == Int64(step.to - 1) else { return }
                try db.execute(step.sql)
            }
        }
    }
}
