// The answers of the control API's commands.

/// What a mutating control command did.
public struct ActionResult: Codable, Sendable, Equatable {
    public var model: String
    public var action: String
    public var version: Int?
    public var previous: Int?
    /// One sentence for the operator.
    public var message: String
    /// The target was not loaded and was loaded first (rollback to an unloaded version).
    public var loadedFirst: Bool
    /// The command overrode a safety check (`--force`), which the event records.
    public var forced: Bool
    /// The event row that records it.
    public var eventID: Int64?
    /// From receiving the command to the new routing table being published.
    public var elapsedMilliseconds: Double

    enum CodingKeys: String, CodingKey {
        case model, action, version, previous, message, forced
        case loadedFirst = "loaded_first", eventID = "event_id", elapsedMilliseconds = "elapsed_ms"
    }

    public init(model: String, action: String, version: Int?, previous: Int?, message: String, loadedFirst: Bool = false,
                forced: Bool = false, eventID: Int64? = nil, elapsedMilliseconds: Double = 0) {
        self.model = model
        self.action = action
        self.version = version
        self.previous = previous
        self.message = message
        self.loadedFirst = loadedFirst
        self.forced = forced
        self.eventID = eventID
        self.elapsedMilliseconds = elapsedMilliseconds
    }
}

/// The answer to `POST /v1/reload`: which keys took effect, and which wait for a restart.
public struct ReloadResult: Codable, Sendable, Equatable {
    public var changed: [String]
    public var restartRequired: [String]
    public var message: String

    enum CodingKeys: String, CodingKey {
        case changed, message
        case restartRequired = "restart_required"
    }

    public init(changed: [String], restartRequired: [String], message: String) {
        self.changed = changed
        self.restartRequired = restartRequired
        self.message = message
    }
}

/// `POST /v1/verify`: every recorded artifact re-hashed.
public struct VerifyReport: Codable, Sendable, Equatable {
    public struct Item: Codable, Sendable, Equatable {
        public var model: String
        public var version: Int
        public var ok: Bool
        public var sha256: String?
        public var problem: String?

        public init(model: String, version: Int, ok: Bool, sha256: String?, problem: String?) {
            self.model = model
            self.version = version
            self.ok = ok
            self.sha256 = sha256
            self.problem = problem
        }
    }

    public var checked: Int
    public var failed: Int
    public var items: [Item]

    public init(checked: Int, failed: Int, items: [Item]) {
        self.checked = checked
        self.failed = failed
        self.items = items
    }
}

/// The answer to `POST /v1/rescan`: the scan ran; `idle` says whether the admissions it started
/// finished within the wait (false when the request asked not to wait).
public struct RescanResult: Codable, Sendable, Equatable {
    public var rescanned: Bool
    public var idle: Bool

    public init(rescanned: Bool = true, idle: Bool) {
        self.rescanned = rescanned
        self.idle = idle
    }
}
