import Synchronization

/// How long a pipeline version's steps take, and its own overhead (its total minus its steps:
/// routing, splitting and merging rows), for /metrics. Cumulative counts and seconds, which a
/// Prometheus `rate()` turns into averages.
///
/// Thread-safety: every request of the version records here; a `Mutex` guards the sums.
public final class PipelineTimings: Sendable {
    public struct Sum: Sendable, Equatable {
        public var count = 0
        public var seconds = 0.0
    }

    private let sums = Mutex<(steps: [String: Sum], overhead: Sum)>(([:], Sum()))

    public init() {}

    func record(step: String, seconds: Double) {
        sums.withLock { $0.steps[step, default: Sum()].count += 1; $0.steps[step, default: Sum()].seconds += seconds }
    }

    func record(overhead seconds: Double) {
        sums.withLock { $0.overhead.count += 1; $0.overhead.seconds += max(seconds, 0) }
    }

    /// Each step's sum, by step id, and the overhead's.
    public var snapshot: (steps: [String: Sum], overhead: Sum) { sums.withLock { $0 } }
}
