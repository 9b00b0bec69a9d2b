import Foundation
import Testing
@testable import Registry

@Suite("Catalog")
struct CatalogTests {
    @Test("the embedded schema is exactly the root schema.sql")
    func schemaIsTheRootFile() throws {
        let file = try String(contentsOfFile: "\(repositoryRoot)/schema.sql", encoding: .utf8)
        #expect(Schema.sql == file.trimmingCharacters(in: .newlines), "run scripts/embed-schema after editing schema.sql")
        #expect(Schema.version == 1)
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
        #expect(try db.scalarInt("PRAGMA user_version") == 1)
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
