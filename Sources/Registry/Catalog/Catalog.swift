import Foundation
import Synchronization

/// The registry's durable state in SQLite: models, versions, aliases, quarantined bytes, routes
/// and the hash-chained event trail. Every change and the event that records it commit in one
/// transaction, so a crash leaves either both or neither.
///
/// Thread-safety: every call takes the single connection from a `Mutex`, so calls may come from
/// any thread and the non-Sendable `Database` never leaves it. No call nests inside another: a
/// command's several changes travel as values (``CatalogWrite``) into one ``commit(_:at:beforeCommit:)``.
/// The serving hot path never calls the catalog.
///
/// The reads and writes are grouped by topic in `Catalog+*.swift`: versions, routing (aliases and
/// routes), rollouts, serving statistics, the event chain, the commit of a command's writes, and
/// the migrations.
public final class Catalog: Sendable {
    private let connection: Mutex<Database>
    /// The time of every event and `updated_at` (a seam for tests).
    let clock: any RegistryClock
    public let path: String

    /// The chain's starting point: the "previous hash" of the first event.
    static let genesis = String(repeating: "0", count: 64)

    /// Opens the catalog at `path`, creating it and applying the schema if it is new.
    public init(path: String, clock: any RegistryClock = SystemClock()) throws(RegistryError) {
        let db = try Database(path: path)
        try Catalog.migrate(db)
        self.connection = Mutex(db)
        self.clock = clock
        self.path = path
    }

    /// Closes the connection (at shutdown). Later calls fail.
    public func close() {
        connection.withLock { $0.close() }
    }

    /// Runs `body` in its own transaction.
    func write<T: Sendable>(_ body: (Database) throws(RegistryError) -> T) throws(RegistryError) -> T {
        try read { db throws(RegistryError) -> T in
            try db.transaction { () throws(RegistryError) -> T in try body(db) }
        }
    }

    /// Runs `body` with the connection, outside any transaction of its own.
    func read<T: Sendable>(_ body: (Database) throws(RegistryError) -> T) throws(RegistryError) -> T {
        let result: Result<T, RegistryError> = connection.withLock { db in
            guard db.handle != nil else { return .failure(RegistryError(.database, "the catalog is closed")) }
            do throws(RegistryError) { return .success(try body(db)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// SQLite's own consistency check ("ok" when sound).
    public func integrityCheck() throws(RegistryError) -> String {
        try read { db throws(RegistryError) in try db.scalarText("PRAGMA integrity_check") ?? "no answer" }
    }
}
