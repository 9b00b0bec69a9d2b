import Foundation

/// The catalog schema: the root `schema.sql`, the single source of truth, compiled into the binary
/// by Package.swift's `embedInCode` resource (through the link `Catalog/schema.sql`), so that the
/// daemon needs no file at run time.
enum Schema {
    static let sql = String(decoding: PackageResources.schema_sql, as: UTF8.self)

    /// The schema version that `sql` ends by setting (`PRAGMA user_version = N;` on a line of its own).
    static let version: Int = {
        let prefix = "PRAGMA user_version = "
        guard let line = sql.split(separator: "\n").last(where: { $0.hasPrefix(prefix) }),
              let version = Int(line.dropFirst(prefix.count).prefix { $0 != ";" }) else {
            preconditionFailure("schema.sql sets no PRAGMA user_version")  // a programming error, caught by the schema test
        }
        return version
    }()

    /// The `CREATE TABLE` statement of `table` as `schema.sql` writes it, so that a migration
    /// adds exactly the table a new catalog gets (the schema file stays the single source).
    static func statement(creatingTable table: String) -> String {
        guard let start = sql.range(of: "CREATE TABLE \(table) ("),
              let end = sql.range(of: ") STRICT;", range: start.upperBound..<sql.endIndex) else {
            preconditionFailure("schema.sql has no STRICT table '\(table)'")  // a programming error, caught by the migration test
        }
        return String(sql[start.lowerBound..<end.upperBound])
    }
}
