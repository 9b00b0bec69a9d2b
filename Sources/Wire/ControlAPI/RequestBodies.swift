// The bodies of the control API's mutating requests. The daemon decodes them strictly: a key
// that is not one of the type's `CodingKeys` is refused. Keys are snake_case.

/// `POST /v1/models/{m}/promote`.
public struct PromoteRequest: RequestBody, Equatable {
    public var version: Int
    /// Promote even if the signature differs from production's (recorded in the event).
    public var force: Bool?
    public var reason: String?

    public static let keys = Set(CodingKeys.allCases.map(\.stringValue))

    enum CodingKeys: String, CodingKey, CaseIterable {
        case version, force, reason
    }

    public init(version: Int, force: Bool? = nil, reason: String? = nil) {
        self.version = version
        self.force = force
        self.reason = reason
    }
}

/// `POST /v1/models/{m}/rollback`.
public struct RollbackRequest: RequestBody, Equatable {
    /// The version to go back to; the previous production when absent.
    public var to: Int?
    /// Roll back even if a serving pipeline cannot use the version (recorded in the event).
    public var force: Bool?
    public var reason: String?

    public static let keys = Set(CodingKeys.allCases.map(\.stringValue))

    enum CodingKeys: String, CodingKey, CaseIterable {
        case to, force, reason
    }

    public init(to: Int? = nil, force: Bool? = nil, reason: String? = nil) {
        self.to = to
        self.force = force
        self.reason = reason
    }
}

/// `PUT /v1/models/{m}/aliases/{alias}`.
public struct AliasRequest: RequestBody, Equatable {
    public var version: Int
    public var reason: String?

    public static let keys = Set(CodingKeys.allCases.map(\.stringValue))

    enum CodingKeys: String, CodingKey, CaseIterable {
        case version, reason
    }

    public init(version: Int, reason: String? = nil) {
        self.version = version
        self.reason = reason
    }
}

/// `PUT /v1/models/{m}/split`: weights by version number, summing to 100.
public struct SplitRequest: RequestBody, Equatable {
    public var weights: [String: Int]
    public var reason: String?

    public static let keys = Set(CodingKeys.allCases.map(\.stringValue))

    enum CodingKeys: String, CodingKey, CaseIterable {
        case weights, reason
    }

    public init(weights: [String: Int], reason: String? = nil) {
        self.weights = weights
        self.reason = reason
    }
}

/// `PUT /v1/models/{m}/shadow`: mirror `percent` (1...100, default 10) of the routed requests to `version`.
public struct ShadowRequest: RequestBody, Equatable {
    public var version: Int
    public var percent: Int?
    public var reason: String?

    public static let keys = Set(CodingKeys.allCases.map(\.stringValue))

    enum CodingKeys: String, CodingKey, CaseIterable {
        case version, percent, reason
    }

    public init(version: Int, percent: Int? = nil, reason: String? = nil) {
        self.version = version
        self.percent = percent
        self.reason = reason
    }
}

/// `POST /v1/models/{m}/rollout`: start a gradual rollout. Defaults as in the comments.
public struct RolloutStartRequest: RequestBody, Equatable {
    public var version: Int
    /// Default 1, 5, 25, 50, 100.
    public var steps: [Int]?
    /// Default 300.
    public var intervalSeconds: Double?
    /// Default 0.01.
    public var maxErrorRate: Double?
    /// Default 1.5.
    public var maxLatencyRatio: Double?
    /// Default 200.
    public var minRequests: Int?
    public var reason: String?

    public static let keys = Set(CodingKeys.allCases.map(\.stringValue))

    enum CodingKeys: String, CodingKey, CaseIterable {
        case version, steps, reason
        case intervalSeconds = "interval_seconds", maxErrorRate = "max_error_rate", maxLatencyRatio = "max_latency_ratio", minRequests = "min_requests"
    }

    public init(version: Int, steps: [Int]? = nil, intervalSeconds: Double? = nil, maxErrorRate: Double? = nil,
                maxLatencyRatio: Double? = nil, minRequests: Int? = nil, reason: String? = nil) {
        self.version = version
        self.steps = steps
        self.intervalSeconds = intervalSeconds
        self.maxErrorRate = maxErrorRate
        self.maxLatencyRatio = maxLatencyRatio
        self.minRequests = minRequests
        self.reason = reason
    }
}

/// A body that only carries a reason (`DELETE` of an alias, a split or a shadow; a rollout command).
public struct ReasonRequest: RequestBody, Equatable {
    public var reason: String?

    public static let keys = Set(CodingKeys.allCases.map(\.stringValue))

    enum CodingKeys: String, CodingKey, CaseIterable {
        case reason
    }

    public init(reason: String? = nil) {
        self.reason = reason
    }
}
