import CSQLite
import Foundation

/// A SQLite connection with one owner.
///
/// Thread-safety: not thread-safe by design. The ``Catalog`` owns the only instance and uses it
/// from its own lock; nothing else touches the handle. (The connection is also opened with
/// SQLITE_OPEN_FULLMUTEX, so a misuse cannot corrupt memory, only serialise.)
///
/// Ownership: the `sqlite3*` is closed once, in ``close()`` or `deinit`; statements finalise
/// themselves in their own `deinit` and are never kept past a call.
final class Database {
    private(set) var handle: OpaquePointer?
    let path: String

    /// Opens (creating if needed) the database at `path` in WAL mode with foreign keys on and
    /// full fsync on commit: the audit trail must survive a crash of the process or the machine.
    ///
    /// `readOnly` opens an existing catalog for reading only and changes nothing about it (no
    /// journal mode switch, no files created): for tools and tests that look at a catalog
    /// another process (maybe another user) owns.
    init(path: String, readOnly: Bool = false) throws(RegistryError) {
        self.path = path
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_FULLMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            throw RegistryError(.database, "cannot open the catalog '\(path)': \(message) (code \(rc))")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        // Wait for a lock held by another process (sqlite3 shell, a backup) instead of failing.
        sqlite3_busy_timeout(db, 5_000)
        if readOnly { return }
        try execute("PRAGMA foreign_keys = ON")
        let mode = try scalarText("PRAGMA journal_mode = WAL")
        guard mode?.lowercased() == "wal" else {
            throw RegistryError(.database, "the catalog '\(path)' did not switch to WAL mode (it reports '\(mode ?? "nothing")')")
        }
        try execute("PRAGMA synchronous = FULL")
    }

    deinit {
        close()
    }

    func close() {
        if let handle {
            sqlite3_close_v2(handle)
            self.handle = nil
        }
    }

    func error(_ rc: Int32, _ sql: String) -> RegistryError {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "closed"
        return Database.error(rc, message, sql, path: path)
    }

    /// The error for a failed statement; a full disk says so plainly, and that nothing of the
    /// change was kept (the transaction rolls back).
    static func error(_ rc: Int32, _ message: String, _ sql: String, path: String) -> RegistryError {
        if rc & 0xff == SQLITE_FULL {
            let directory = (path as NSString).deletingLastPathComponent
            return RegistryError(.database, "catalog '\(path)': the disk holding it is full (\(message)); the change was not recorded and none of it took effect: free space in '\(directory.isEmpty ? "." : directory)' and retry")
        }
        return RegistryError(.database, "catalog: \(message) (code \(rc)) in: \(sql.prefix(200))")
    }

    /// Runs one or more statements that return no rows.
    func execute(_ sql: String) throws(RegistryError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? "error"
            sqlite3_free(errorMessage)
            throw Database.error(rc, message, sql, path: path)
        }
    }

    /// Runs `sql` with `bindings` and calls `row` for each result row.
    func query(_ sql: String, _ bindings: [SQLValue] = [], row: (Row) throws(RegistryError) -> Void) throws(RegistryError) {
        let statement = try Statement(database: self, sql: sql)
        try statement.bind(bindings)
        while try statement.step() {
            try row(Row(statement: statement))
        }
    }

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    func run(_ sql: String, _ bindings: [SQLValue] = []) throws(RegistryError) -> Int {
        let statement = try Statement(database: self, sql: sql)
        try statement.bind(bindings)
        while try statement.step() {}
        return Int(sqlite3_changes(handle))
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    func scalarText(_ sql: String, _ bindings: [SQLValue] = []) throws(RegistryError) -> String? {
        var result: String?
        try query(sql, bindings) { row in result = row.text(0) }
        return result
    }

    func scalarInt(_ sql: String, _ bindings: [SQLValue] = []) throws(RegistryError) -> Int64? {
        var result: Int64?
        try query(sql, bindings) { row in result = row.int(0) }
        return result
    }

    /// Runs `body` in an IMMEDIATE transaction (the write lock is taken at the start, so two
    /// writers cannot deadlock on upgrade); rolls back if `body` throws.
    func transaction<T>(_ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

/// A value bound to or read from SQL.
enum SQLValue {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
}

extension SQLValue {
    static func optional(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
    static func optional(_ value: Int?) -> SQLValue { value.map { .int(Int64($0)) } ?? .null }
}

/// A prepared statement; finalised in `deinit`.
final class Statement {
    private let database: Database
    let handle: OpaquePointer
    let sql: String

    init(database: Database, sql: String) throws(RegistryError) {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(database.handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw database.error(rc, sql) }
        self.database = database
        self.handle = statement
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    /// SQLITE_TRANSIENT: SQLite copies bound text before the call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    func bind(_ values: [SQLValue]) throws(RegistryError) {
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(handle, index)
            case .int(let v): rc = sqlite3_bind_int64(handle, index, v)
            case .double(let v): rc = sqlite3_bind_double(handle, index, v)
            case .text(let v): rc = sqlite3_bind_text(handle, index, v, -1, Statement.transient)
            }
            guard rc == SQLITE_OK else { throw database.error(rc, sql) }
        }
    }

    /// Advances; true when a row is available.
    func step() throws(RegistryError) -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw database.error(rc, sql)
        }
    }
}

/// The current row of a statement; valid only inside the row callback.
struct Row {
    let statement: Statement

    func isNull(_ i: Int32) -> Bool { sqlite3_column_type(statement.handle, i) == SQLITE_NULL }
    func int(_ i: Int32) -> Int64? { isNull(i) ? nil : sqlite3_column_int64(statement.handle, i) }
    func double(_ i: Int32) -> Double? { isNull(i) ? nil : sqlite3_column_double(statement.handle, i) }
    func text(_ i: Int32) -> String? {
        guard !isNull(i), let c = sqlite3_column_text(statement.handle, i) else { return nil }
        return String(cString: c)
    }
}
