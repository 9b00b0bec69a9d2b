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

    /// One model version's requests during one minute (`minute` = seconds since 1970 / 60).
    public struct MinuteRow: Sendable, Equatable {
        public var model: String
        public var version: Int
        public var minute: Int64
        public var series: Series
    }

    struct MinuteKey: Hashable, Sendable {
        var key: Key
        var minute: Int64
    }

    private struct State: Sendable {
        var series: [Key: Series] = [:]
        /// Per-minute counters not yet flushed to the catalog.
        var pending: [MinuteKey: Series] = [:]
        var decisions: [String: [String: Int]] = [:]
        /// Requests refused before a version was chosen (unknown model, bad request...).
        var rejected: [String: Int] = [:]
    }

    private let state = Mutex(State())
    private let clock: any RegistryClock

    public init(clock: any RegistryClock = SystemClock()) {
        self.clock = clock
    }

    /// Records one request answered (or failed) by `version` of `model`.
    public func record(model: String, version: Int, seconds: Double, failed: Bool, decision: String) {
        let bucket = ServingStats.bounds.firstIndex { seconds <= $0 }
        let minute = Int64((clock.now() / 60).rounded(.down))
        state.withLock { state in
            func update(_ series: inout Series) {
                series.requests += 1
                if failed { series.errors += 1 }
                series.seconds += seconds
                if let bucket { series.buckets[bucket] += 1 }
            }
            let key = Key(model: model, version: version)
            update(&state.series[key, default: Series()])
            update(&state.pending[MinuteKey(key: key, minute: minute), default: Series()])
            state.decisions[model, default: [:]][decision, default: 0] += 1
        }
    }

    /// Takes the per-minute counters gathered since the last call, for a batched flush.
    public func takePending() -> [MinuteRow] {
        let pending = state.withLock { state -> [MinuteKey: Series] in
            defer { state.pending.removeAll(keepingCapacity: true) }
            return state.pending
        }
        return pending.map { MinuteRow(model: $0.key.key.model, version: $0.key.key.version, minute: $0.key.minute, series: $0.value) }
            .sorted { ($0.minute, $0.model, $0.version) < ($1.minute, $1.model, $1.version) }
    }

    /// Puts rows back after a failed flush, so that nothing is lost (they merge with newer counts).
    public func restorePending(_ rows: [MinuteRow]) {
        state.withLock { state in
            for row in rows {
                let key = MinuteKey(key: Key(model: row.model, version: row.version), minute: row.minute)
                var merged = state.pending[key] ?? Series()
                merged.requests += row.series.requests
                merged.errors += row.series.errors
                merged.seconds += row.series.seconds
                for i in merged.buckets.indices { merged.buckets[i] += row.series.buckets[i] }
                state.pending[key] = merged
            }
        }
    }

    /// Forgets the cumulative series of versions that are no longer loaded (and their split
    /// arms), so that `/metrics` holds series for what can serve, not for every version ever
    /// published: a daemon that takes a new version every few minutes for months must not grow
    /// its exposition without bound. Counters of a version loaded again start from zero, which
    /// Prometheus reads as a counter reset. Per-minute rows still to be flushed to the catalog
    /// are kept, so the history loses nothing.
    public func retainOnly(loaded: [(model: String, version: Int)]) {
        let keep = Set(loaded.map { Key(model: $0.model, version: $0.version) })
        state.withLock { state in
            state.series = state.series.filter { keep.contains($0.key) }
            for (model, arms) in state.decisions {
                let kept = arms.filter { arm, _ in
                    guard arm.hasPrefix("split:"), let version = Int(arm.dropFirst(6)) else { return true }
                    return keep.contains(Key(model: model, version: version))
                }
                if kept.count != arms.count { state.decisions[model] = kept }
            }
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
