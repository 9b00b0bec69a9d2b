import Foundation

// The control API's JSON bodies (`/v1/...`), shared by registryd and registryctl so that both
// sides agree by construction. docs/API.md shows an example of each. Keys are snake_case.

/// One version of a model, as the control API reports it.
public struct VersionInfo: Codable, Sendable, Equatable {
    public var version: Int
    public var state: String
    public var reason: String
    public var sha256: String?
    public var size: Int64?
    public var path: String
    /// Whether a session is loaded for it (it can answer now).
    public var loaded: Bool
    /// The aliases that point at it.
    public var aliases: [String]
    /// `unsigned`, `verified` or `invalid`.
    public var signature: String
    public var signatureKey: String?
    public var firstSeen: Double
    public var updatedAt: Double
    /// Its share of the model's unpinned traffic, 0...1.
    public var traffic: Double

    enum CodingKeys: String, CodingKey {
        case version, state, reason, sha256, size, path, loaded, aliases, signature, traffic
        case signatureKey = "signature_key", firstSeen = "first_seen", updatedAt = "updated_at"
    }

    public init(version: Int, state: String, reason: String, sha256: String?, size: Int64?, path: String, loaded: Bool, aliases: [String],
                signature: String, signatureKey: String?, firstSeen: Double, updatedAt: Double, traffic: Double) {
        self.version = version
        self.state = state
        self.reason = reason
        self.sha256 = sha256
        self.size = size
        self.path = path
        self.loaded = loaded
        self.aliases = aliases
        self.signature = signature
        self.signatureKey = signatureKey
        self.firstSeen = firstSeen
        self.updatedAt = updatedAt
        self.traffic = traffic
    }
}

/// A model with its versions, aliases and traffic.
public struct ModelInfo: Codable, Sendable, Equatable {
    public var name: String
    public var production: Int?
    public var aliases: [String: Int]
    /// The weighted split in force (version to weight), if any.
    public var split: [String: Int]?
    public var versions: [VersionInfo]
    /// The shadow in force, with what the mirror has measured, if any.
    public var shadow: ShadowInfo?
    /// The model's latest rollout (running, paused, or how the last one ended), if any.
    public var rollout: RolloutInfo?

    public init(name: String, production: Int?, aliases: [String: Int], split: [String: Int]?, versions: [VersionInfo],
                shadow: ShadowInfo? = nil, rollout: RolloutInfo? = nil) {
        self.name = name
        self.production = production
        self.aliases = aliases
        self.split = split
        self.versions = versions
        self.shadow = shadow
        self.rollout = rollout
    }
}

/// One model version's requests during one minute, from `GET /v1/models/{m}/stats`.
public struct StatsPoint: Codable, Sendable, Equatable {
    public var version: Int
    /// The minute's start, seconds since 1970, and as ISO 8601.
    public var at: Double
    public var time: String
    public var requests: Int
    public var errors: Int
    public var meanSeconds: Double?
    /// Upper bound of the latency bucket holding the 99th percentile.
    public var p99Seconds: Double?

    enum CodingKeys: String, CodingKey {
        case version, at, time, requests, errors
        case meanSeconds = "mean_seconds", p99Seconds = "p99_seconds"
    }

    public init(version: Int, at: Double, time: String, requests: Int, errors: Int, meanSeconds: Double?, p99Seconds: Double?) {
        self.version = version
        self.at = at
        self.time = time
        self.requests = requests
        self.errors = errors
        self.meanSeconds = meanSeconds
        self.p99Seconds = p99Seconds
    }
}

/// `PUT /v1/models/{m}/shadow`: mirror `percent` (1...100, default 10) of the routed requests to `version`.
public struct ShadowRequest: Codable, Sendable, Equatable {
    public var version: Int
    public var percent: Int?
    public var reason: String?

    public init(version: Int, percent: Int? = nil, reason: String? = nil) {
        self.version = version
        self.percent = percent
        self.reason = reason
    }
}

/// A shadow and what its mirror has measured since it was set.
public struct ShadowInfo: Codable, Sendable, Equatable {
    public var model: String
    public var version: Int
    public var percent: Int
    /// Requests offered to the mirror; dropped because its queue was full; failed in the shadow.
    public var mirrored: Int
    public var dropped: Int
    public var failed: Int
    /// `top1` (labels or argmax of scores) or `max_abs_diff`; nil before the first comparison.
    public var method: String?
    /// The output compared.
    public var output: String?
    /// Rows compared and rows whose top-1 answers agreed.
    public var comparedRows: Int
    public var agreedRows: Int
    /// agreed / compared, for top-1 comparisons.
    public var agreement: Double?
    /// The largest absolute difference between numeric answers.
    public var maxAbsDiff: Double?
    /// Mean model run time of the shadow and of the serving version on the same requests.
    public var shadowMeanSeconds: Double?
    public var primaryMeanSeconds: Double?
    /// Mirrored requests waiting for the shadow now.
    public var queued: Int

    enum CodingKeys: String, CodingKey {
        case model, version, percent, mirrored, dropped, failed, method, output, agreement, queued
        case comparedRows = "compared_rows", agreedRows = "agreed_rows", maxAbsDiff = "max_abs_diff"
        case shadowMeanSeconds = "shadow_mean_seconds", primaryMeanSeconds = "primary_mean_seconds"
    }

    public init(model: String, version: Int, percent: Int, mirrored: Int, dropped: Int, failed: Int, method: String?, output: String?,
                comparedRows: Int, agreedRows: Int, agreement: Double?, maxAbsDiff: Double?, shadowMeanSeconds: Double?,
                primaryMeanSeconds: Double?, queued: Int) {
        self.model = model
        self.version = version
        self.percent = percent
        self.mirrored = mirrored
        self.dropped = dropped
        self.failed = failed
        self.method = method
        self.output = output
        self.comparedRows = comparedRows
        self.agreedRows = agreedRows
        self.agreement = agreement
        self.maxAbsDiff = maxAbsDiff
        self.shadowMeanSeconds = shadowMeanSeconds
        self.primaryMeanSeconds = primaryMeanSeconds
        self.queued = queued
    }
}

/// A tensor of a version's signature.
public struct TensorMeta: Codable, Sendable, Equatable {
    public var name: String
    /// The KServe v2 datatype (`FP32`, `INT64`, `BYTES`...).
    public var datatype: String
    /// Dimensions, -1 where variable.
    public var shape: [Int]

    public init(name: String, datatype: String, shape: [Int]) {
        self.name = name
        self.datatype = datatype
        self.shape = shape
    }
}

/// One version in detail: what ``VersionInfo`` says, plus its signature and manifest.
public struct VersionDetail: Codable, Sendable, Equatable {
    public var model: String
    public var info: VersionInfo
    /// Present when the version is loaded.
    public var inputs: [TensorMeta]?
    public var outputs: [TensorMeta]?
    /// The manifest as recorded, verbatim JSON text.
    public var manifest: String?
    /// When loaded: the memory estimated from the file before the load, and the growth of the
    /// daemon's resident memory measured around the load. The budget counts the larger.
    public var memoryEstimateBytes: Int64?
    public var memoryMeasuredBytes: Int64?

    enum CodingKeys: String, CodingKey {
        case model, info, inputs, outputs, manifest
        case memoryEstimateBytes = "memory_estimate_bytes", memoryMeasuredBytes = "memory_measured_bytes"
    }

    public init(model: String, info: VersionInfo, inputs: [TensorMeta]?, outputs: [TensorMeta]?, manifest: String?,
                memoryEstimateBytes: Int64? = nil, memoryMeasuredBytes: Int64? = nil) {
        self.model = model
        self.info = info
        self.inputs = inputs
        self.outputs = outputs
        self.manifest = manifest
        self.memoryEstimateBytes = memoryEstimateBytes
        self.memoryMeasuredBytes = memoryMeasuredBytes
    }
}

/// `POST /v1/models/{m}/promote`.
public struct PromoteRequest: Codable, Sendable, Equatable {
    public var version: Int
    /// Promote even if the signature differs from production's (recorded in the event).
    public var force: Bool?
    public var reason: String?

    public init(version: Int, force: Bool? = nil, reason: String? = nil) {
        self.version = version
        self.force = force
        self.reason = reason
    }
}

/// `POST /v1/models/{m}/rollback`.
public struct RollbackRequest: Codable, Sendable, Equatable {
    /// The version to go back to; the previous production when absent.
    public var to: Int?
    public var reason: String?

    public init(to: Int? = nil, reason: String? = nil) {
        self.to = to
        self.reason = reason
    }
}

/// `PUT /v1/models/{m}/aliases/{alias}`.
public struct AliasRequest: Codable, Sendable, Equatable {
    public var version: Int
    public var reason: String?

    public init(version: Int, reason: String? = nil) {
        self.version = version
        self.reason = reason
    }
}

/// A body that only carries a reason (`DELETE` of an alias or a split, `POST /v1/rescan`).
public struct ReasonRequest: Codable, Sendable, Equatable {
    public var reason: String?

    public init(reason: String? = nil) {
        self.reason = reason
    }
}

/// `PUT /v1/models/{m}/split`: weights by version number, summing to 100.
public struct SplitRequest: Codable, Sendable, Equatable {
    public var weights: [String: Int]
    public var reason: String?

    public init(weights: [String: Int], reason: String? = nil) {
        self.weights = weights
        self.reason = reason
    }
}

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

/// `GET /v1/status`: the daemon itself.
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

public struct DaemonInfo: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    public var pid: Int32
    public var uptimeSeconds: Double
    public var modelRoot: String
    public var database: String
    public var controlSocket: String
    public var listen: String?
    public var models: Int
    public var loadedVersions: Int

    enum CodingKeys: String, CodingKey {
        case name, version, pid, database, listen, models
        case uptimeSeconds = "uptime_seconds", modelRoot = "model_root", controlSocket = "control_socket", loadedVersions = "loaded_versions"
    }

    public init(name: String, version: String, pid: Int32, uptimeSeconds: Double, modelRoot: String, database: String,
                controlSocket: String, listen: String?, models: Int, loadedVersions: Int) {
        self.name = name
        self.version = version
        self.pid = pid
        self.uptimeSeconds = uptimeSeconds
        self.modelRoot = modelRoot
        self.database = database
        self.controlSocket = controlSocket
        self.listen = listen
        self.models = models
        self.loadedVersions = loadedVersions
    }
}

/// `{"error": "..."}`, the body of every failed request.
public struct ErrorBody: Codable, Sendable, Equatable {
    public var error: String

    public init(error: String) {
        self.error = error
    }
}

/// The encoder and decoder both sides use.
public enum APICoding {
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain value types cannot fail.
        return Array(try! encoder.encode(value))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }

    /// A decoding error as one sentence that names the key at fault.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "the body" : "'" + keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + "'"
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing key '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
        case .typeMismatch(let type, let context): return "\(path(context.codingPath)) must be \(describe(type))"
        case .valueNotFound(let type, let context): return "\(path(context.codingPath)) must be \(describe(type)), not null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "the body is not valid JSON" : "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type, is Int32.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        default: "\(type)".hasPrefix("Array") ? "an array" : "an object"
        }
    }

    /// ISO 8601 UTC with milliseconds.
    public static func time(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}

extension APICoding {
    /// Decodes `T` from a JSON object, refusing keys other than `keys`: a misspelt `"froce"`
    /// must be an error, not silently ignored. An empty body decodes as `{}`.
    public static func decodeStrict<T: Decodable>(_ type: T.Type, from bytes: [UInt8], keys: Set<String>) throws(APIDecodingError) -> T {
        let body = bytes.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 } ? Array("{}".utf8) : bytes
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) else {
            throw APIDecodingError(message: "the body is not valid JSON")
        }
        guard let dictionary = object as? [String: Any] else {
            throw APIDecodingError(message: "the body must be a JSON object")
        }
        if let unknown = dictionary.keys.sorted().first(where: { !keys.contains($0) }) {
            throw APIDecodingError(message: "unknown key '\(unknown)'; expected one of: \(keys.sorted().joined(separator: ", "))")
        }
        do {
            return try decode(type, from: body)
        } catch {
            throw APIDecodingError(message: describe(error))
        }
    }
}

/// Why a request body was refused.
public struct APIDecodingError: Error, Sendable, Equatable {
    public var message: String
}

/// `POST /v1/models/{m}/rollout`: start a gradual rollout. Defaults as in the comments.
public struct RolloutStartRequest: Codable, Sendable, Equatable {
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

    public static let keys: Set<String> = ["version", "steps", "interval_seconds", "max_error_rate", "max_latency_ratio", "min_requests", "reason"]

    enum CodingKeys: String, CodingKey {
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

/// A rollout's progress, with the statistics of the current step's window.
public struct RolloutInfo: Codable, Sendable, Equatable {
    public struct Window: Codable, Sendable, Equatable {
        public var requests: Int
        public var errors: Int
        public var errorRate: Double
        /// Upper bound of the latency bucket holding the 99th percentile; nil without requests.
        public var p99Seconds: Double?

        enum CodingKeys: String, CodingKey {
            case requests, errors
            case errorRate = "error_rate", p99Seconds = "p99_seconds"
        }

        public init(requests: Int, errors: Int, errorRate: Double, p99Seconds: Double?) {
            self.requests = requests
            self.errors = errors
            self.errorRate = errorRate
            self.p99Seconds = p99Seconds
        }
    }

    public var model: String
    public var version: Int
    public var baseline: Int
    /// `running`, `paused`, `promoted`, `rolled_back` or `aborted`.
    public var state: String
    /// 1-based.
    public var step: Int
    public var steps: [Int]
    /// The canary's share of unpinned traffic now.
    public var percent: Int
    /// The latest judgement: "insufficient data: ...", the failed gate, "step passed: ...".
    public var note: String
    public var intervalSeconds: Double
    public var stepStartedAt: Double
    public var maxErrorRate: Double
    public var maxLatencyRatio: Double
    public var minRequests: Int
    public var canary: Window
    public var baselineWindow: Window
    public var startedAt: Double

    enum CodingKeys: String, CodingKey {
        case model, version, baseline, state, step, steps, percent, note, canary
        case intervalSeconds = "interval_seconds", stepStartedAt = "step_started_at", maxErrorRate = "max_error_rate"
        case maxLatencyRatio = "max_latency_ratio", minRequests = "min_requests", baselineWindow = "baseline_window", startedAt = "started_at"
    }

    public init(model: String, version: Int, baseline: Int, state: String, step: Int, steps: [Int], percent: Int, note: String,
                intervalSeconds: Double, stepStartedAt: Double, maxErrorRate: Double, maxLatencyRatio: Double, minRequests: Int,
                canary: Window, baselineWindow: Window, startedAt: Double) {
        self.model = model
        self.version = version
        self.baseline = baseline
        self.state = state
        self.step = step
        self.steps = steps
        self.percent = percent
        self.note = note
        self.intervalSeconds = intervalSeconds
        self.stepStartedAt = stepStartedAt
        self.maxErrorRate = maxErrorRate
        self.maxLatencyRatio = maxLatencyRatio
        self.minRequests = minRequests
        self.canary = canary
        self.baselineWindow = baselineWindow
        self.startedAt = startedAt
    }
}
