/// An immutable snapshot of what serves: per model, its loaded versions and its production.
/// The lifecycle builds a new table for every change and publishes it whole.
public struct RoutingTable: Sendable {
    public struct ModelRoutes: Sendable {
        public var production: LoadedVersion?
        public var versions: [Int: LoadedVersion]
        /// A weighted split, when one is in force: it takes the unpinned traffic.
        public var arms: [Arm]?
        /// Every version the catalog knows, loaded or not, with its state: a request pinned to
        /// one that is not loaded gets 503 and the state, one never recorded gets 404.
        public var known: [Int: VersionState]
        /// A shadow version that a share of the routed requests is mirrored to.
        public var shadow: Shadow?
        /// The model's aliases other than production (`candidate`...), for a pipeline step that
        /// names `model@alias`.
        public var aliases: [String: Int] = [:]

        public init(production: LoadedVersion?, versions: [Int: LoadedVersion], arms: [Arm]? = nil, known: [Int: VersionState] = [:]) {
            self.production = production
            self.versions = versions
            self.arms = arms
            self.known = known
        }
    }

    /// A shadow: `percent` of the requests routed to another version are mirrored to `version`.
    public struct Shadow: Sendable {
        public var version: LoadedVersion
        public var percent: Int
        /// The mirror's counters for this shadow (the serving path counts into them).
        public var tally: ShadowMirror.Tally
    }

    /// One arm of a split: buckets below `upperBucket` (and at or above the previous arm's) go to `version`.
    public struct Arm: Sendable {
        public var version: LoadedVersion
        public var upperBucket: Int
    }

    public var models: [String: ModelRoutes]

    public init(models: [String: ModelRoutes] = [:]) {
        self.models = models
    }
}
