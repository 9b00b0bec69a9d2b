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
public final class Catalog: @unchecked Sendable {
    private let lock = NSRecursiveLock()
    private let database: Database
    /// Whether an ``atomically(_:beforeCommit:)`` group's transaction is open (guarded by `lock`,
    /// which its thread holds throughout).
    private var inGroup = false
    private let clock: any RegistryClock
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

    /// Closes the connection (at shutdown). Later calls fail.
    public func close() {
        lock.withLock { database.close() }
    }

    private func write<T>(_ body: (Database) throws(RegistryError) -> T) throws(RegistryError) -> T {
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

    private func read<T>(_ body: (Database) throws(RegistryError) -> T) throws(RegistryError) -> T {
        lock.lock()
        defer { lock.unlock() }
        guard database.handle != nil else { throw RegistryError(.database, "the catalog is closed") }
        return try body(database)
    }

    // MARK: Versions

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

    // MARK: Aliases

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
    /// version states at the same time, and appends `event`, in one transaction.
    @discardableResult
    public func setAlias(
        model: String, alias: String, version: Int?, states: [(version: Int, state: VersionState, reason: String)] = [],
        event: EventDraft
    ) throws(RegistryError) -> Int64 {
        try write { db throws(RegistryError) in
            let now = clock.now()
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
    public func setRoute(model: String, spec: String?, states: [(version: Int, state: VersionState, reason: String)] = [], event: EventDraft) throws(RegistryError) -> Int64 {
        try write { db throws(RegistryError) in
            let now = clock.now()
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

    // MARK: Serving statistics

    /// Adds per-minute serving counters to the stored ones (one transaction for the batch) and
    /// deletes rows older than `retainAfterMinute`.
    public func flushStats(_ rows: [ServingStats.MinuteRow], retainAfterMinute: Int64) throws(RegistryError) {
        try write { db throws(RegistryError) in
            for row in rows {
                var buckets = row.series.buckets
                try db.query("SELECT buckets FROM serving_stats WHERE model = ? AND version = ? AND minute = ?",
                             [.text(row.model), .int(Int64(row.version)), .int(row.minute)]) { stored in
                    let old = Catalog.parseBuckets(stored.text(0) ?? "")
                    for i in buckets.indices where i < old.count { buckets[i] += old[i] }
                }
                try db.run(
                    """
                    INSERT INTO serving_stats(model, version, minute, requests, errors, seconds, buckets) VALUES (?,?,?,?,?,?,?)
                    ON CONFLICT(model, version, minute) DO UPDATE SET requests = requests + excluded.requests,
                        errors = errors + excluded.errors, seconds = seconds + excluded.seconds, buckets = excluded.buckets
                    """,
                    [.text(row.model), .int(Int64(row.version)), .int(row.minute), .int(Int64(row.series.requests)),
                     .int(Int64(row.series.errors)), .double(row.series.seconds), .text("[" + buckets.map(String.init).joined(separator: ",") + "]")])
            }
            try db.run("DELETE FROM serving_stats WHERE minute < ?", [.int(retainAfterMinute)])
        }
    }

    /// Stored per-minute counters of `model` from `sinceMinute` on, oldest first.
    public func stats(model: String, sinceMinute: Int64) throws(RegistryError) -> [ServingStats.MinuteRow] {
        try read { db throws(RegistryError) in
            var out: [ServingStats.MinuteRow] = []
            try db.query("SELECT version, minute, requests, errors, seconds, buckets FROM serving_stats WHERE model = ? AND minute >= ? ORDER BY minute, version",
                         [.text(model), .int(sinceMinute)]) { row in
                var series = ServingStats.Series()
                series.requests = Int(row.int(2) ?? 0)
                series.errors = Int(row.int(3) ?? 0)
                series.seconds = row.double(4) ?? 0
                let buckets = Catalog.parseBuckets(row.text(5) ?? "")
                if buckets.count == series.buckets.count { series.buckets = buckets }
                out.append(ServingStats.MinuteRow(model: model, version: Int(row.int(0) ?? 0), minute: row.int(1) ?? 0, series: series))
            }
            return out
        }
    }

    static func parseBuckets(_ text: String) -> [Int] {
        text.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",").compactMap { Int($0) }
    }

    // MARK: Rollouts

    /// Inserts (id 0) or updates a rollout, with an optional event, in one transaction; returns its id.
    @discardableResult
    public func saveRollout(_ r: RolloutRecord, event: EventDraft?) throws(RegistryError) -> Int64 {
        let plan = String(decoding: (try? JSONEncoder().encode(r.plan)) ?? Data("{}".utf8), as: UTF8.self)
        let window = RolloutWindow(note: r.note, stepStartedAt: r.stepStartedAt, canary: r.canary, baseline: r.baselineStats)
        let windowText = String(decoding: (try? JSONEncoder().encode(window)) ?? Data("{}".utf8), as: UTF8.self)
        return try write { db throws(RegistryError) in
            let now = clock.now()
            var id = r.id
            if id == 0 {
                try db.run(
                    "INSERT INTO rollouts(model, version, baseline, plan, step, state, window, started_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    [.text(r.model), .int(Int64(r.version)), .int(Int64(r.baseline)), .text(plan), .int(Int64(r.step)), .text(r.state.rawValue),
                     .text(windowText), .double(r.startedAt), .double(now)])
                id = try db.scalarInt("SELECT last_insert_rowid()") ?? 0
            } else {
                try db.run("UPDATE rollouts SET step = ?, state = ?, window = ?, updated_at = ? WHERE id = ?",
                           [.int(Int64(r.step)), .text(r.state.rawValue), .text(windowText), .double(now), .int(id)])
            }
            if let event { try Catalog.append(event, at: now, in: db) }
            return id
        }
    }

    /// The newest rollout of each model.
    public func latestRollouts() throws(RegistryError) -> [RolloutRecord] {
        try read { db throws(RegistryError) in
            var out: [RolloutRecord] = []
            try db.query(
                "SELECT id, model, version, baseline, plan, step, state, window, started_at, updated_at FROM rollouts r WHERE id = (SELECT max(id) FROM rollouts WHERE model = r.model)"
            ) { row in
                guard let plan = try? JSONDecoder().decode(RolloutPlan.self, from: Data(row.text(4)!.utf8)),
                      let state = RolloutRecord.State(rawValue: row.text(6)!) else { return }
                let window = (try? JSONDecoder().decode(RolloutWindow.self, from: Data(row.text(7)!.utf8)))
                    ?? RolloutWindow(note: "", stepStartedAt: row.double(9)!, canary: WindowStats(), baseline: WindowStats())
                out.append(RolloutRecord(
                    id: row.int(0)!, model: row.text(1)!, version: Int(row.int(2)!), baseline: Int(row.int(3)!), plan: plan,
                    step: Int(row.int(5)!), state: state, note: window.note, stepStartedAt: window.stepStartedAt,
                    canary: window.canary, baselineStats: window.baseline, startedAt: row.double(8)!, updatedAt: row.double(9)!))
            }
            return out
        }
    }

    /// Changes one version's state and appends `event`, in one transaction.
    public func setState(model: String, version: Int, _ state: VersionState, reason: String, event: EventDraft) throws(RegistryError) {
        try write { db throws(RegistryError) in
            let now = clock.now()
            try db.run(
                "UPDATE versions SET state = ?, reason = ?, updated_at = ? WHERE model = ? AND version = ?",
                [.text(state.rawValue), .text(reason), .double(now), .text(model), .int(Int64(version))])
            try Catalog.append(event, at: now, in: db)
        }
    }

    // MARK: Events

    /// Appends one event on its own.
    @discardableResult
    public func append(_ event: EventDraft) throws(RegistryError) -> Int64 {
        try write { db throws(RegistryError) in try Catalog.append(event, at: clock.now(), in: db) }
    }

    /// The text an event's hash covers: its id, fields and the previous hash, unambiguously
    /// separated. Changing any field, or removing a row, breaks the chain.
    static func chainText(id: Int64, at: Double, _ e: EventDraft, previous: String) -> String {
        let fields: [String] = [
            String(id), String(at), e.actor, e.action, e.model ?? "\u{0}", e.version.map(String.init) ?? "\u{0}",
            e.before ?? "\u{0}", e.after ?? "\u{0}", e.reason, previous,
        ]
        return fields.map { "\($0.utf8.count):\($0)" }.joined(separator: "|")
    }

    @discardableResult
    private static func append(_ e: EventDraft, at: Double, in db: Database) throws(RegistryError) -> Int64 {
        var previous = genesis
        var lastID: Int64 = 0
        try db.query("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1") { row in
            lastID = row.int(0)!
            previous = row.text(1)!
        }
        // AUTOINCREMENT never reuses ids, and we hold the write lock, so the next id is known.
        let id = max(lastID, try db.scalarInt("SELECT seq FROM sqlite_sequence WHERE name = 'events'") ?? 0) + 1
        let hash = SHA256.hex(of: Array(chainText(id: id, at: at, e, previous: previous).utf8))
        try db.run(
            "INSERT INTO events(id, at, actor, action, model, version, before, after, reason, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [.int(id), .double(at), .text(e.actor), .text(e.action), .optional(e.model), .optional(e.version),
             .optional(e.before), .optional(e.after), .text(e.reason), .text(previous), .text(hash)])
        return id
    }

    /// Events, oldest first, optionally of one model and within a time range.
    /// Events matching the filters, oldest first: the oldest `limit` of them, or with `newest`
    /// the newest `limit` (read newest first from the index, so a long trail is not read whole).
    public func events(model: String? = nil, actions: [String] = [], since: Double? = nil, until: Double? = nil, limit: Int = 1000,
                       newest: Bool = false) throws(RegistryError) -> [Event] {
        try read { db throws(RegistryError) in
            var clauses: [String] = []
            var bindings: [SQLValue] = []
            if let model { clauses.append("model = ?"); bindings.append(.text(model)) }
            if !actions.isEmpty {
                clauses.append("action IN (" + actions.map { _ in "?" }.joined(separator: ",") + ")")
                bindings.append(contentsOf: actions.map { .text($0) })
            }
            if let since { clauses.append("at >= ?"); bindings.append(.double(since)) }
            if let until { clauses.append("at <= ?"); bindings.append(.double(until)) }
            let whereClause = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
            var out: [Event] = []
            try db.query(
                "SELECT id, at, actor, action, model, version, before, after, reason, prev_hash, hash FROM events\(whereClause) ORDER BY id\(newest ? " DESC" : "") LIMIT ?",
                bindings + [.int(Int64(limit))]
            ) { row in
                out.append(Event(
                    id: row.int(0)!, at: row.double(1)!,
                    draft: EventDraft(actor: row.text(2)!, action: row.text(3)!, model: row.text(4), version: row.int(5).map(Int.init),
                                      before: row.text(6), after: row.text(7), reason: row.text(8) ?? ""),
                    previousHash: row.text(9)!, hash: row.text(10)!))
            }
            return newest ? out.reversed() : out
        }
    }

    /// The result of walking the whole event chain.
    public struct ChainCheck: Sendable, Equatable {
        public var events: Int
        /// Descriptions of every break found, empty when the chain is intact.
        public var problems: [String]
        public var isIntact: Bool { problems.isEmpty }
    }

    /// Recomputes every event's hash and checks each links to its predecessor with no gap.
    public func verifyChain() throws(RegistryError) -> ChainCheck {
        let all = try events(limit: Int.max)
        var problems: [String] = []
        var previous = Catalog.genesis
        var expectedID: Int64 = 1
        for event in all {
            if event.id != expectedID {
                problems.append("events \(expectedID)...\(event.id - 1) are missing (deleted)")
            }
            if event.previousHash != previous {
                problems.append("event \(event.id) does not link to the event before it")
            }
            let recomputed = SHA256.hex(of: Array(Catalog.chainText(id: event.id, at: event.at, event.draft, previous: event.previousHash).utf8))
            if recomputed != event.hash {
                problems.append("event \(event.id) was altered (its hash does not match its fields)")
            }
            previous = event.hash
            expectedID = event.id + 1
        }
        let sequence = try read { db throws(RegistryError) in
            try db.scalarInt("SELECT seq FROM sqlite_sequence WHERE name = 'events'") ?? 0
        }
        if sequence >= expectedID {
            problems.append("events \(expectedID)...\(sequence) are missing (deleted from the end)")
        }
        return ChainCheck(events: all.count, problems: problems)
    }

    /// SQLite's own consistency check ("ok" when sound).
    public func integrityCheck() throws(RegistryError) -> String {
        try read { db throws(RegistryError) in try db.scalarText("PRAGMA integrity_check") ?? "no answer" }
    }
}

/// The `rollouts.window` column: the current step's judgement and statistics.
struct RolloutWindow: Codable {
    var note: String
    var stepStartedAt: Double
    var canary: WindowStats
    var baseline: WindowStats

    enum CodingKeys: String, CodingKey {
        case note, canary, baseline
        case stepStartedAt = "step_started_at"
    }
}

extension Schema {
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
