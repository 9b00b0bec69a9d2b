// The audit trail as the control API reports it.

/// One row of the audit trail.
public struct EventInfo: Codable, Sendable, Equatable {
    public var id: Int64
    /// Seconds since 1970 (UTC).
    public var at: Double
    /// `at` as ISO 8601 UTC with milliseconds.
    public var time: String
    /// `registryd` for automatic transitions, else the peer (`uid=1000(alice) gid=1000 pid=4242`).
    public var actor: String
    public var action: String
    public var model: String?
    public var version: Int?
    public var before: String?
    public var after: String?
    public var reason: String
    public var hash: String

    public init(id: Int64, at: Double, time: String, actor: String, action: String, model: String?, version: Int?,
                before: String?, after: String?, reason: String, hash: String) {
        self.id = id
        self.at = at
        self.time = time
        self.actor = actor
        self.action = action
        self.model = model
        self.version = version
        self.before = before
        self.after = after
        self.reason = reason
        self.hash = hash
    }
}

/// `GET /v1/events/verify`: the hash chain walked end to end.
public struct ChainReport: Codable, Sendable, Equatable {
    public var events: Int
    public var intact: Bool
    public var problems: [String]

    public init(events: Int, intact: Bool, problems: [String]) {
        self.events = events
        self.intact = intact
        self.problems = problems
    }
}

/// `GET /v1/models/{m}/served-at?at=T`: what answered the model's unpinned requests at `at`.
public struct ServedAt: Codable, Sendable, Equatable {
    public var model: String
    public var at: Double
    public var time: String
    /// The production version then, nil if none.
    public var version: Int?
    /// The split in force then, if any (version to weight).
    public var split: [String: Int]?
    /// The event that put it there, and when.
    public var eventID: Int64?
    public var since: Double?

    enum CodingKeys: String, CodingKey {
        case model, at, time, version, split, since
        case eventID = "event_id"
    }

    public init(model: String, at: Double, time: String, version: Int?, split: [String: Int]?, eventID: Int64?, since: Double?) {
        self.model = model
        self.at = at
        self.time = time
        self.version = version
        self.split = split
        self.eventID = eventID
        self.since = since
    }
}
