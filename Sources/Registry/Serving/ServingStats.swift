import Foundation
import Synchronization

/// Request counters and latency histograms per model version, and routing decisions per arm,
/// aggregated in memory on the hot path (one short lock, no I/O) and read by `/metrics`.
public final class ServingStats: Sendable {
    /// Histogram bucket upper bounds, in seconds.
    public static let bounds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    public struct Series: Sendable, Equatable {
        public var requests = 0
        public var errors = 0
        public var seconds = 0.0
        public var buckets = [Int](repeating: 0, count: ServingStats.bounds.count)
    }

    struct Key: Hashable, Sendable {
        var model: String
        var version: Int
    }

    private struct State: Sendable {
        var series: [Key: Series] = [:]
        var decisions: [String: [String: Int]] = [:]
        /// Requests refused before a version was chosen (unknown model, bad request...).
        var rejected: [String: Int] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Records one request answered (or failed) by `version` of `model`.
    public func record(model: String, version: Int, seconds: Double, failed: Bool, decision: String) {
        let bucket = ServingStats.bounds.firstIndex { seconds <= $0 }
        state.withLock { state in
            func update(_ series: inout Series) {
                series.requests += 1
                if failed { series.errors += 1 }
                series.seconds += seconds
                if let bucket { series.buckets[bucket] += 1 }
            }
            update(&state.series[Key(model: model, version: version), default: Series()])
            state.decisions[model, default: [:]][decision, default: 0] += 1
        }
    }

    /// Records a request refused before routing, by HTTP status.
    public func reject(status: Int) {
        state.withLock { $0.rejected[String(status), default: 0] += 1 }
    }

    public func snapshot() -> (series: [(model: String, version: Int, series: Series)], decisions: [String: [String: Int]], rejected: [String: Int]) {
        state.withLock { state in
            (state.series.map { ($0.key.model, $0.key.version, $0.value) }.sorted { ($0.model, $0.version) < ($1.model, $1.version) },
             state.decisions, state.rejected)
        }
    }
}
