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
    public var state: RolloutStateName
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

    public init(model: String, version: Int, baseline: Int, state: RolloutStateName, step: Int, steps: [Int], percent: Int, note: String,
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
