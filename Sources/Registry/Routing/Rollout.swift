import Foundation

/// A gradual rollout's plan: the canary's traffic steps and the gates each step must pass.
public struct RolloutPlan: Sendable, Equatable, Codable {
    /// Percent of unpinned traffic for the canary at each step, increasing, ending at 100.
    public var steps: [Int]
    /// How long each step lasts before it is judged, in seconds.
    public var intervalSeconds: Double
    /// A step fails when the canary's error rate over the window exceeds this.
    public var maxErrorRate: Double
    /// A step fails when the canary's p99 latency exceeds the baseline's by more than this factor.
    public var maxLatencyRatio: Double
    /// Below this many canary requests in the window, a step neither passes nor fails: it holds.
    public var minRequests: Int

    enum CodingKeys: String, CodingKey {
        case steps
        case intervalSeconds = "interval_seconds", maxErrorRate = "max_error_rate"
        case maxLatencyRatio = "max_latency_ratio", minRequests = "min_requests"
    }

    public init(steps: [Int], intervalSeconds: Double, maxErrorRate: Double, maxLatencyRatio: Double, minRequests: Int) {
        self.steps = steps
        self.intervalSeconds = intervalSeconds
        self.maxErrorRate = maxErrorRate
        self.maxLatencyRatio = maxLatencyRatio
        self.minRequests = minRequests
    }

    /// Why the plan cannot run, or nil.
    public var problem: String? {
        if steps.isEmpty { return "a rollout needs at least one step" }
        if steps.contains(where: { $0 < 1 || $0 > 100 }) { return "steps must be percents in 1...100" }
        if zip(steps, steps.dropFirst()).contains(where: { $0 >= $1 }) { return "steps must increase" }
        if steps.last != 100 { return "the last step must be 100" }
        if !(intervalSeconds > 0) { return "the interval must be positive" }
        if !(0...1).contains(maxErrorRate) { return "max_error_rate must be in 0...1" }
        if !(maxLatencyRatio >= 1) { return "max_latency_ratio must be at least 1" }
        if minRequests < 1 { return "min_requests must be at least 1" }
        return nil
    }
}

/// Requests of one version over a window: counts and a latency histogram (``ServingStats`` bounds).
public struct WindowStats: Sendable, Equatable, Codable {
    public var requests = 0
    public var errors = 0
    public var buckets = [Int](repeating: 0, count: ServingStats.bounds.count)

    public init() {}

    init(_ series: ServingStats.Series) {
        requests = series.requests
        errors = series.errors
        buckets = series.buckets
    }

    public var errorRate: Double { requests == 0 ? 0 : Double(errors) / Double(requests) }

    /// The 99th percentile as the upper bound of the bucket it falls in (nil without data).
    public var p99: Double? {
        guard requests > 0 else { return nil }
        let target = (Double(requests) * 0.99).rounded(.up)
        var cumulative = 0
        for (bound, count) in zip(ServingStats.bounds, buckets) {
            cumulative += count
            if Double(cumulative) >= target { return bound }
        }
        return ServingStats.bounds.last! * 2  // beyond the last bucket
    }

    /// The lower bound of the bucket the 99th percentile falls in: the least the p99 can be.
    public var p99Floor: Double? {
        guard let upper = p99 else { return nil }
        guard let index = ServingStats.bounds.firstIndex(of: upper) else { return ServingStats.bounds.last! }
        return index == 0 ? 0 : ServingStats.bounds[index - 1]
    }

    /// `self - other`, field by field (counters since a snapshot).
    func subtracting(_ other: WindowStats) -> WindowStats {
        var out = WindowStats()
        out.requests = requests - other.requests
        out.errors = errors - other.errors
        out.buckets = zip(buckets, other.buckets).map { $0 - $1 }
        return out
    }

    func adding(_ other: WindowStats) -> WindowStats {
        var out = WindowStats()
        out.requests = requests + other.requests
        out.errors = errors + other.errors
        out.buckets = zip(buckets, other.buckets).map { $0 + $1 }
        return out
    }
}

/// What to do with a rollout's current step: a pure function of the plan and the window.
public enum RolloutPolicy {
    public enum Decision: Sendable, Equatable {
        /// Too little canary traffic to judge: neither pass nor fail.
        case hold(String)
        /// The gates pass but the interval has not ended.
        case wait
        /// The step passed; go to the next.
        case advance
        /// The last step passed: the canary becomes production.
        case promote
        /// A gate failed: back to 0% at once.
        case rollBack(String)
    }

    /// Judges the window. Gates are checked as soon as there is enough data (a failing canary is
    /// rolled back without waiting for the interval to end); passing needs the interval over.
    public static func decide(plan: RolloutPlan, step: Int, canary: WindowStats, baseline: WindowStats, intervalOver: Bool) -> Decision {
        guard canary.requests >= plan.minRequests else {
            return intervalOver ? .hold("insufficient data: \(canary.requests) of \(plan.minRequests) canary requests in the window") : .wait
        }
        if canary.errorRate > plan.maxErrorRate {
            return .rollBack(String(format: "error rate %.4f over %d requests exceeds %.4f", canary.errorRate, canary.requests, plan.maxErrorRate))
        }
        // Latencies are known to a histogram bucket. The gate fails only when the canary's p99 is
        // certainly beyond the ratio: the least it can be (its bucket's lower bound) exceeds the
        // most the baseline's can be (its bucket's upper bound) times the ratio. Comparing upper
        // bounds alone rolled back healthy sub-millisecond canaries that sat one bucket higher.
        if let canaryFloor = canary.p99Floor, let canaryP99 = canary.p99, let baselineP99 = baseline.p99,
           baseline.requests >= plan.minRequests, canaryFloor > baselineP99 * plan.maxLatencyRatio {
            return .rollBack(String(format: "p99 latency over %.4f s (bucket %.4f–%.4f s) exceeds %.1f x the baseline's p99 of at most %.4f s",
                                    canaryFloor, canaryFloor, canaryP99, plan.maxLatencyRatio, baselineP99))
        }
        guard intervalOver else { return .wait }
        return step + 1 >= plan.steps.count ? .promote : .advance
    }
}

/// A rollout as stored and reported.
public struct RolloutRecord: Sendable, Equatable {
    public enum State: String, Sendable, Codable {
        case running, paused, promoted
        case rolledBack = "rolled_back"
        case aborted
        public var isActive: Bool { self == .running || self == .paused }
    }

    public var id: Int64
    public var model: String
    public var version: Int
    public var baseline: Int
    public var plan: RolloutPlan
    public var step: Int
    public var state: State
    /// The latest judgement ("insufficient data: ...", the failed gate, ...).
    public var note: String
    public var stepStartedAt: Double
    /// Statistics of the current step's window so far (persisted: a restart resumes them).
    public var canary: WindowStats
    public var baselineStats: WindowStats
    public var startedAt: Double
    public var updatedAt: Double

    public var percent: Int { state == .promoted ? 100 : (state.isActive ? plan.steps[step] : 0) }
}
