import Synchronization

extension ShadowMirror {
    /// What the mirror has seen for one model's shadow version since it was set.
    public struct Report: Sendable, Equatable {
        public var model: String
        public var version: Int
        public var percent: Int
        /// Requests offered to the mirror; those dropped because the queue was full; those the
        /// shadow failed to answer (an error in the model, or an incompatible answer).
        public var mirrored = 0
        public var dropped = 0
        public var failed = 0
        /// Rows compared, and (for a classifier) rows whose top-1 answer agreed.
        public var comparedRows = 0
        public var agreedRows = 0
        /// How the answers are compared: `top1` (labels, or the argmax of scores) or `max_abs_diff`.
        public var method: String?
        /// The output compared.
        public var output: String?
        /// The largest absolute difference seen between numeric answers.
        public var maxAbsDiff: Double?
        /// Run times of the shadow and of the primary on the same requests (the shadow's is its
        /// CPU time when it runs on the mirror's own thread: see `execute`).
        public var shadowSeconds = 0.0
        public var primarySeconds = 0.0
        public var runs = 0
        public var shadowBuckets = [Int](repeating: 0, count: ServingStats.bounds.count)

        public var agreement: Double? {
            method == "top1" && comparedRows > 0 ? Double(agreedRows) / Double(comparedRows) : nil
        }
    }

    /// A shadow's counters that the serving path updates: atomics, so that a request counts its
    /// mirror (or the mirror's drop) without a lock. One per shadow set; the routing table carries
    /// it with the shadow, and a job whose tally is no longer the report's is ignored.
    public final class Tally: Sendable {
        public let model: String
        public let version: Int
        let mirrored = Atomic<Int>(0)
        let dropped = Atomic<Int>(0)

        init(model: String, version: Int) {
            self.model = model
            self.version = version
        }
    }
}
