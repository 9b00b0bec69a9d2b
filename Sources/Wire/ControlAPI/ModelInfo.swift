// What the control API reports about models and their versions (`GET /v1/models...`), shared by
// registryd and registryctl so that both sides agree by construction. docs/API.md shows an
// example of each. Keys are snake_case, as in every control API body.

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

/// One version of a model, as the control API reports it.
public struct VersionInfo: Codable, Sendable, Equatable {
    public var version: Int
    public var state: VersionStateName
    public var reason: String
    public var sha256: String?
    public var size: Int64?
    public var path: String
    /// Whether a session is loaded for it (it can answer now).
    public var loaded: Bool
    /// The aliases that point at it.
    public var aliases: [String]
    public var signature: SignatureStatusName
    public var signatureKey: String?
    public var firstSeen: Double
    public var updatedAt: Double
    /// Its share of the model's unpinned traffic, 0...1.
    public var traffic: Double
    /// What is on disk under its number. `changed` under a live version: it serves the admitted
    /// bytes from memory, and no restart can load it. Absent from older daemons' answers.
    public var file: ArtifactFileName?

    enum CodingKeys: String, CodingKey {
        case version, state, reason, sha256, size, path, loaded, aliases, signature, traffic, file
        case signatureKey = "signature_key", firstSeen = "first_seen", updatedAt = "updated_at"
    }

    public init(version: Int, state: VersionStateName, reason: String, sha256: String?, size: Int64?, path: String, loaded: Bool, aliases: [String],
                signature: SignatureStatusName, signatureKey: String?, firstSeen: Double, updatedAt: Double, traffic: Double,
                file: ArtifactFileName? = nil) {
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
        self.file = file
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
    /// A loaded pipeline's steps, in the order they run.
    public var steps: [PipelineStepInfo]?

    enum CodingKeys: String, CodingKey {
        case model, info, inputs, outputs, manifest, steps
        case memoryEstimateBytes = "memory_estimate_bytes", memoryMeasuredBytes = "memory_measured_bytes"
    }

    public init(model: String, info: VersionInfo, inputs: [TensorMeta]?, outputs: [TensorMeta]?, manifest: String?,
                memoryEstimateBytes: Int64? = nil, memoryMeasuredBytes: Int64? = nil, steps: [PipelineStepInfo]? = nil) {
        self.steps = steps
        self.model = model
        self.info = info
        self.inputs = inputs
        self.outputs = outputs
        self.manifest = manifest
        self.memoryEstimateBytes = memoryEstimateBytes
        self.memoryMeasuredBytes = memoryMeasuredBytes
    }
}

/// One step of a pipeline: what it calls and what it feeds it.
public struct PipelineStepInfo: Codable, Sendable, Equatable {
    public var id: String
    /// The model it calls (`name`, `name@7`, `name@alias`), or for a switch each case as
    /// `value -> model` (and `default -> model`).
    public var calls: [String]
    /// For a switch: the `step.output` whose value picks the model.
    public var switchOn: String?
    /// Each model input and where it comes from (`$request.X` or `step.output`), by name.
    public var inputs: [String: String]

    enum CodingKeys: String, CodingKey {
        case id, calls, inputs
        case switchOn = "switch"
    }

    public init(id: String, calls: [String], switchOn: String?, inputs: [String: String]) {
        self.id = id
        self.calls = calls
        self.switchOn = switchOn
        self.inputs = inputs
    }

    /// One line: `router: router (input=$request.image)`, or for a switch
    /// `classifier: switch on router.label: 0 -> low, 1 -> mid (input=$request.image)`.
    public var summary: String {
        let feeds = inputs.keys.sorted().map { "\($0)=\(inputs[$0]!)" }.joined(separator: ", ")
        let target = switchOn.map { "switch on \($0): " + calls.joined(separator: ", ") } ?? calls.joined(separator: ", ")
        return "\(id): \(target) (\(feeds))"
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
