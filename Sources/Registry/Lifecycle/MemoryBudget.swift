import Foundation

/// Whether a new version fits the memory budget, and what to unload if the load order says to
/// make room: a pure decision over a snapshot, tested without sessions (like ``RetentionPolicy``).
///
/// A version counts for the larger of its estimate (from its file size, known before the load)
/// and the resident memory measured around its load.
public enum MemoryBudget {
    public struct Holding: Sendable, Equatable {
        public var model: String
        public var version: Int
        public var bytes: Int64
        /// Pointed at by an alias, a split arm or the shadow: never unloaded to make room.
        public var isProtected: Bool

        public init(model: String, version: Int, bytes: Int64, isProtected: Bool) {
            self.model = model
            self.version = version
            self.bytes = bytes
            self.isProtected = isProtected
        }
    }

    public enum Decision: Sendable, Equatable {
        case fits
        /// Over the budget, loaded anyway: availability first keeps the old version until the new serves.
        case overBudget(String)
        /// Budget first: unload these (versions of the same model that nothing points at, oldest first), then load.
        case unload([Int], String)
        /// Cannot fit even after unloading what may be unloaded.
        case refuse(String)
    }

    /// The decision for loading `adding` bytes more of `model`. `budget` 0 means no budget.
    public static func decide(budget: Int64, loaded: [Holding], adding: Int64, model: String, order: DaemonConfig.LoadOrder) -> Decision {
        guard budget > 0 else { return .fits }
        let used = loaded.reduce(Int64(0)) { $0 + $1.bytes }
        guard used + adding > budget else { return .fits }
        let message = "memory budget \(mebibytes(budget)) MiB: \(mebibytes(used)) MiB loaded + \(mebibytes(adding)) MiB new"
        switch order {
        case .availabilityFirst:
            return .overBudget(message)
        case .budgetFirst:
            let needed = used + adding - budget
            var freed: Int64 = 0
            var victims: [Int] = []
            for holding in loaded.filter({ $0.model == model && !$0.isProtected }).sorted(by: { $0.version < $1.version }) where freed < needed {
                freed += holding.bytes
                victims.append(holding.version)
            }
            guard freed >= needed else {
                return .refuse("\(message) exceeds the budget even after unloading the versions nothing points at (budget_first)")
            }
            return .unload(victims, message)
        }
    }

    static func mebibytes(_ bytes: Int64) -> String {
        String(format: "%.1f", Double(bytes) / 1_048_576)
    }

    /// The memory a session is expected to take before it loads: its weights, plus ONNX
    /// Runtime's working memory.
    public static func estimate(size: Int64) -> Int64 { size * 2 + (8 << 20) }

    /// This process's resident memory now (`/proc/self/statm`), or nil where it cannot be read.
    public static func residentBytes() -> Int64? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count >= 2, let pages = Int64(fields[1]) else { return nil }
        return pages * Int64(sysconf(Int32(_SC_PAGESIZE)))
    }
}
