/// Which loaded versions of one model stay loaded: a pure function of a snapshot, so it is
/// tested without files or sessions (TF Serving's "policy" piece).
///
/// Kept: the production version; every version an alias points at; the `keepPrevious` highest
/// versions below production (instant rollback); and versions above production that are waiting
/// to be promoted. Never unloaded: the production version, whatever else happens.
public enum RetentionPolicy {
    public static func versionsToUnload(
        loaded: Set<Int>, production: Int?, aliased: Set<Int>, keepPrevious: Int
    ) -> Set<Int> {
        guard let production else { return [] }  // nothing is safe to drop without a production
        var keep: Set<Int> = aliased.union([production])
        keep.formUnion(loaded.filter { $0 > production })
        keep.formUnion(loaded.filter { $0 < production }.sorted(by: >).prefix(keepPrevious))
        return loaded.subtracting(keep)
    }
}

/// What becomes of a version that has just been admitted: a pure decision.
public enum AdmissionPolicy {
    public enum Outcome: Equatable, Sendable {
        /// Becomes production (the model had none serving, or the policy says so).
        case promote
        case candidate
        case ready
    }

    public static func outcome(policy: ModelPolicy, hasServingProduction: Bool) -> Outcome {
        if !hasServingProduction { return .promote }
        switch policy.onNewVersion {
        case .live: return .promote
        case .candidate: return .candidate
        case .ready: return .ready
        }
    }
}
