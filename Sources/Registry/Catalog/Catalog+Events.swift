/// The event trail: append-only (triggers in `schema.sql`) and hash-chained, each event's hash
/// covering its fields and its predecessor's hash.
extension Catalog {
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
    /// Appends `e` inside the caller's transaction, linked to the last event; returns its id.
    static func append(_ e: EventDraft, at: Double, in db: Database) throws(RegistryError) -> Int64 {
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
}
