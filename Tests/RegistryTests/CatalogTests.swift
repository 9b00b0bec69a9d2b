import Foundation
import Testing
@testable import Registry

@Suite("Catalog")
struct CatalogTests {
    @Test("the embedded schema is exactly the root schema.sql")
    func schemaIsTheRootFile() throws {
        let file = try String(contentsOfFile: "\(repositoryRoot)/schema.sql", encoding: .utf8)
        #expect(Schema.sql == file, "Sources/Registry/Catalog/schema.sql must be a link to the root schema.sql")
        #expect(Schema.version == 2)
        #expect(Catalog.migrations.last?.to == Schema.version)
    }

    /// Tables, indexes and triggers, and every table's columns, of a database.
    func shape(_ path: String) throws -> [String] {
        let db = try Database(path: path)
        defer { db.close() }
        var objects: [String] = []
        try db.query("SELECT type, name, tbl_name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name") { row in
            objects.append("\(row.text(0)!) \(row.text(1)!) on \(row.text(2)!)")
        }
        for table in objects.filter({ $0.hasPrefix("table ") }).map({ String($0.split(separator: " ")[1]) }) {
            try db.query("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)", [.text(table)]) { row in
                objects.append("\(table).\(row.text(0)!) \(row.text(1)!) notnull=\(row.int(2)!) pk=\(row.int(3)!)")
            }
            try db.query("SELECT strict FROM pragma_table_list WHERE name = ?", [.text(table)]) { row in objects.append("\(table) strict=\(row.int(0)!)") }
        }
        objects.append("user_version \(try db.scalarInt("PRAGMA user_version")!)")
        return objects
    }

    @Test("a version 1 catalog is migrated to exactly the current schema, keeping its data")
    func migration() throws {
        let dir = TempDirectory()
        let old = "\(dir.path)/old.sqlite"
        do {
            let db = try Database(path: old)
            try db.execute(try String(contentsOfFile: "\(repositoryRoot)/Tests/Fixtures/schema/schema-v1.sql", encoding: .utf8))
            try db.run("INSERT INTO models(name, created_at) VALUES ('m', 1)")
            db.close()
        }
        let migrated = try Catalog(path: old)
        migrated.close()
        let fresh = "\(dir.path)/new.sqlite"
        try Catalog(path: fresh).close()
        let (a, b) = (try shape(old), try shape(fresh))
        #expect(a == b, "migrated: \(a.filter { !b.contains($0) }); fresh: \(b.filter { !a.contains($0) })")
        #expect(a.contains("table serving_stats on serving_stats") && a.contains("user_version 2"))
        let db = try Database(path: old)
        #expect(try db.scalarInt("SELECT count(*) FROM models") == 1)
        db.close()
    }

    @Test("serving statistics flush in batches: counts add up per minute, old rows expire, nothing is lost on a failed flush")
    func statsFlush() throws {
        let dir = TempDirectory()
        let clock = FixedClock(1_795_000_021)  // one second into a minute
        let catalog = try Catalog(path: "\(dir.path)/c.sqlite", clock: clock)
        let stats = ServingStats(clock: clock)
        let minute = Int64((clock.now() / 60).rounded(.down))
        for i in 0..<10 { stats.record(model: "m", version: 1, seconds: 0.0004, failed: i == 0, decision: "production") }
        stats.record(model: "m", version: 2, seconds: 0.02, failed: false, decision: "split:2")
        try catalog.flushStats(stats.takePending(), retainAfterMinute: 0)
        #expect(stats.takePending().isEmpty)
        for _ in 0..<5 { stats.record(model: "m", version: 1, seconds: 0.003, failed: false, decision: "production") }
        clock.advance(by: 60)
        stats.record(model: "m", version: 1, seconds: 0.003, failed: false, decision: "production")
        try catalog.flushStats(stats.takePending(), retainAfterMinute: 0)
        let rows = try catalog.stats(model: "m", sinceMinute: minute)
        #expect(rows.map { "\($0.version)@\($0.minute - minute): \($0.series.requests)/\($0.series.errors)" } == ["1@0: 15/1", "2@0: 1/0", "1@1: 1/0"])
        #expect(rows[0].series.buckets.reduce(0, +) == 15, "histograms merge too")
        #expect(abs(rows[0].series.seconds - (10 * 0.0004 + 5 * 0.003)) < 1e-9)

        // A flush that fails (the catalog is closed here; a full disk in life) keeps the counts.
        stats.record(model: "m", version: 1, seconds: 0.001, failed: false, decision: "production")
        let pending = stats.takePending()
        catalog.close()
        #expect(throws: RegistryError.self) { try catalog.flushStats(pending, retainAfterMinute: 0) }
        stats.restorePending(pending)
        #expect(stats.takePending().map(\.series.requests) == [1])

        // Retention deletes whole old minutes.
        let again = try Catalog(path: "\(dir.path)/c.sqlite", clock: clock)
        try again.flushStats([], retainAfterMinute: minute + 1)
        #expect(try again.stats(model: "m", sinceMinute: 0).map(\.minute) == [minute + 1])
    }

    @Test("a new catalog is in WAL mode with the schema version set, and reopens with its data")
    func createAndReopen() throws {
        let dir = TempDirectory()
        let path = "\(dir.path)/c.sqlite"
        do {
            let catalog = try Catalog(path: path)
            try catalog.save(VersionRecord(model: "m", version: 1, sha256: "aa", size: 1, path: "/p", state: .ready, firstSeen: 1, updatedAt: 1),
                             event: EventDraft(action: "ready", model: "m", version: 1))
            try catalog.setAlias(model: "m", alias: "production", version: 1, event: EventDraft(action: "promote", model: "m", version: 1))
            catalog.close()
        }
        let db = try Database(path: path)
        #expect(try db.scalarText("PRAGMA journal_mode") == "wal")
        #expect(try db.scalarInt("PRAGMA user_version") == 2)
        db.close()
        let again = try Catalog(path: path)
        #expect(try again.versions().map(\.version) == [1])
        #expect(try again.aliases(model: "m") == ["production": 1])
        #expect(try again.integrityCheck() == "ok")
    }

    @Test("a catalog from a newer registryd is refused, not altered")
    func newerSchemaRefused() throws {
        let dir = TempDirectory()
        let path = "\(dir.path)/c.sqlite"
        let db = try Database(path: path)
        try db.execute("PRAGMA user_version = 99")
        db.close()
        let error = #expect(throws: RegistryError.self) { try Catalog(path: path) }
        #expect(error?.message.contains("schema version 99") == true)
    }

    @Test("events are append-only, and the hash chain detects an edited and a deleted row")
    func hashChain() throws {
        let dir = TempDirectory()
        let path = "\(dir.path)/c.sqlite"
        let catalog = try Catalog(path: path)
        for i in 1...5 { try catalog.append(EventDraft(action: "test", model: "m", version: i, reason: "event \(i)")) }
        #expect(try catalog.verifyChain() == Catalog.ChainCheck(events: 5, problems: []))
        catalog.close()

        // The triggers refuse edits through SQL...
        let db = try Database(path: path)
        #expect(throws: RegistryError.self) { try db.run("UPDATE events SET reason = 'x' WHERE id = 2") }
        #expect(throws: RegistryError.self) { try db.run("DELETE FROM events WHERE id = 2") }
        // ...but someone with the file can drop them. The chain still tells.
        try db.execute("DROP TRIGGER events_are_append_only_update; DROP TRIGGER events_are_append_only_delete")
        try db.run("UPDATE events SET reason = 'nothing happened' WHERE id = 2")
        db.close()
        let edited = try Catalog(path: path).verifyChain()
        #expect(edited.problems == ["event 2 was altered (its hash does not match its fields)"])

        let db2 = try Database(path: path)
        try db2.run("DELETE FROM events WHERE id = 4")
        try db2.run("DELETE FROM events WHERE id = 5")
        db2.close()
        let deleted = try Catalog(path: path).verifyChain()
        #expect(deleted.problems.contains("event 2 was altered (its hash does not match its fields)"))
        #expect(deleted.problems.contains("events 4...5 are missing (deleted from the end)"))
    }
}
