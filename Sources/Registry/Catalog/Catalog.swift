import Foundation

/// The registry's durable state in SQLite: models, versions, aliases, quarantined bytes, routes
/// and the hash-chained event trail. Every change and the event that records it commit in one
/// transaction, so a crash leaves either both or neither.
///
/// Thread-safety: all access goes through `lock` around the single connection, so calls may come
/// from any thread; that lock is why the class is `@unchecked Sendable` (the non-Sendable
/// `Database` and the `inGroup` flag never leave it). The lock is recursive because an
/// ``atomically(_:beforeCommit:)`` group holds it while its body makes ordinary calls on the
/// same thread. The serving hot path never calls the catalog.
///
/// The reads and writes are grouped by topic in `Catalog+*.swift`: versions, routing (aliases and
/// routes), rollouts, serving statistics, the event chain, and the migrations.
public final class Catalog: @unchecked Sendable {
    private let lock = NSRecursiveLock()
    private let database: Database
    /// Whether an ``atomically(_:beforeCommit:)`` group's transaction is open (guarded by `lock`,
    /// which its thread holds throughout).
    private var inGroup = false
    /// The time of every event and `updated_at` (a seam for tests).
    let clock: any RegistryClock
    public let path: String

    /// The chain's starting point: the "previous hash" of the first event.
    static let genesis = String(repeating: "0", count: 64)

    /// Opens the catalog at `path`, creating it and applying the schema if it is new.
    public init(path: String, clock: any RegistryClock = SystemClock()) throws(RegistryError) {
        let db = try Database(path: path)
        try Catalog.migrate(db)
        self.database = db
        self.clock = clock
        self.path = path
    }

    /// Closes the connection (at shutdown). Later calls fail.
    public func close() {
        lock.withLock { database.close() }
    }

    /// Runs `body` in its own transaction, or in the open ``atomically(_:beforeCommit:)`` group's.
    func write<T>(_ body: (Database) throws(RegistryError) -> T) throws(RegistryError) -> T {
        lock.lock()
        defer { lock.unlock() }
        guard database.handle != nil else { throw RegistryError(.database, "the catalog is closed") }
        if inGroup { return try body(database) }
        return try database.transaction { () throws(RegistryError) -> T in try body(database) }
    }

    /// Runs `body`, whose catalog writes (from this thread) all go into one transaction: a
    /// command that changes several things (ends a split, moves production, retires a version,
    /// each with its event) commits all of them or, on a failure or a crash, none. Other threads
    /// wait for the group to end. `beforeCommit` runs last inside the transaction (a fault
    /// injection point). Groups nest: an inner one joins the outer.
    public func atomically<T>(_ body: () throws(RegistryError) -> T, beforeCommit: () -> Void = {}) throws(RegistryError) -> T {
        lock.lock()
        defer { lock.unlock() }
        guard database.handle != nil else { throw RegistryError(.database, "the catalog is closed") }
        if inGroup { return try body() }
        inGroup = true
        defer { inGroup = false }
        return try database.transaction { () throws(RegistryError) -> T in
            let result = try body()
            beforeCommit()
            return result
        }
    }

    /// Runs `body` under the lock, outside any transaction of its own.
    func read<T>(_ body: (Database) throws(RegistryError) -> T) throws(RegistryError) -> T {
        lock.lock()
        defer { lock.unlock() }
        guard database.handle != nil else { throw RegistryError(.database, "the catalog is closed") }
        return try body(database)
    }

    /// SQLite's own consistency check ("ok" when sound).
    public func integrityCheck() throws(RegistryError) -> String {
        try read { db throws(RegistryError) in try db.scalarText("PRAGMA integrity_check") ?? "no answer" }
    }
}
