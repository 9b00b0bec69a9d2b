import Foundation
import Runtime
import Wire
import Synchronization

/// A version with a loaded session, ready to answer.
///
/// Reference-counted: a request holds its `LoadedVersion` for its whole run, so a version
/// retired mid-request is released (and its ONNX Runtime session freed) only after its last
/// request finishes. Immutable, hence `Sendable`.
public final class LoadedVersion: Sendable {
    public let model: String
    public let version: Int
    public let sha256: String
    public let session: Session
    public let manifest: Manifest?
    public let loadedAt: Double
    /// Memory estimated from the file size before the load, and resident memory measured around it.
    public let estimatedBytes: Int64
    public let measuredBytes: Int64?
    /// What the memory budget counts: the larger of the two.
    public var accountedBytes: Int64 { max(estimatedBytes, measuredBytes ?? 0) }
    /// The parts of every v2 response of this version that never change, as bytes, made once:
    /// `{"model_name":…,"model_version":"N"` and `,"parameters":{"sha256":"…","routing":`.
    let responseOpening: [UInt8]
    let responseParameters: [UInt8]
    /// The session's output names, in the model's order.
    let outputNames: [String]

    public init(model: String, version: Int, sha256: String, session: Session, manifest: Manifest?, loadedAt: Double, estimatedBytes: Int64,
                measuredBytes: Int64? = nil) {
        self.model = model
        self.version = version
        self.sha256 = sha256
        self.session = session
        self.manifest = manifest
        self.loadedAt = loadedAt
        self.estimatedBytes = estimatedBytes
        self.measuredBytes = measuredBytes
        self.responseOpening = Array("{\"model_name\":\(JSONText.quoted(model)),\"model_version\":\"\(version)\"".utf8)
        self.responseParameters = Array(",\"parameters\":{\"sha256\":\(JSONText.quoted(sha256)),\"routing\":".utf8)
        self.outputNames = session.outputs.map(\.name)
    }
}

/// How a request was routed to the version that answered it.
public enum RoutingDecision: Sendable, Equatable, CustomStringConvertible {
    /// The request named the version.
    case pinned
    /// The model's production alias.
    case production
    /// An arm of a weighted split, chosen by the request's routing key (sticky) or at random.
    case split(version: Int, sticky: Bool)

    public var description: String {
        switch self {
        case .pinned: "pinned"
        case .production: "production"
        case .split(let version, let sticky): "split arm \(version) (\(sticky ? "sticky" : "random"))"
        }
    }
}

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

/// The serving side's view of the routing table.
///
/// Hot path: one lock acquisition to copy the current table (a few reference-count operations),
/// no actor hop, no I/O. Publishing replaces the table atomically: a request sees the old table
/// or the new one, never a mix.
public final class Router: Sendable {
    private let table = Mutex(RoutingTable())

    public init() {}

    public func publish(_ newTable: RoutingTable) {
        table.withLock { $0 = newTable }
    }

    public var current: RoutingTable { table.withLock { $0 } }

    /// The version that answers a request for `model`: `version` if given; else the split's arm
    /// for `routingKey` (random without a key); else production.
    public func resolve(model: String, version: Int? = nil, routingKey: String? = nil) throws(RegistryError) -> (LoadedVersion, RoutingDecision) {
        let routed = try route(model: model, version: version, routingKey: routingKey)
        return (routed.version, routed.decision)
    }

    /// ``resolve(model:version:routingKey:)``, plus the model's shadow when the request should
    /// be mirrored to it: a routed (not pinned) request, answered by another version, drawn
    /// with the shadow's probability.
    public func route(model: String, version: Int? = nil, routingKey: String? = nil) throws(RegistryError)
        -> (version: LoadedVersion, decision: RoutingDecision, mirror: RoutingTable.Shadow?)
    {
        let routes = table.withLock { $0.models[model] }
        guard let routes else { throw RegistryError(.notFound, "model '\(model)' not found") }
        if let version {
            guard let loaded = routes.versions[version] else {
                guard let state = routes.known[version] else {
                    throw RegistryError(.notFound, "model '\(model)' version \(version) not found")
                }
                throw RegistryError(.unavailable, "model '\(model)' version \(version) is not loaded (\(state.rawValue))")
            }
            return (loaded, .pinned, nil)
        }
        func mirror(_ chosen: LoadedVersion) -> RoutingTable.Shadow? {
            guard let shadow = routes.shadow, shadow.version !== chosen, RoutingRandom.int(in: 0..<100) < shadow.percent else { return nil }
            return shadow
        }
        if let arms = routes.arms, !arms.isEmpty {
            let bucket = routingKey.map(TrafficSplit.bucket(forKey:)) ?? RoutingRandom.int(in: 0..<TrafficSplit.buckets)
            let arm = arms.first { bucket < $0.upperBucket } ?? arms[arms.count - 1]
            return (arm.version, .split(version: arm.version.version, sticky: routingKey != nil), mirror(arm.version))
        }
        guard let production = routes.production else {
            throw RegistryError(.unavailable, "model '\(model)' has no production version serving")
        }
        return (production, .production, mirror(production))
    }
}
