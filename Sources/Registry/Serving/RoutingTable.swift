import Foundation
import Runtime
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
    /// Memory estimate used for the budget.
    public let estimatedBytes: Int64

    public init(model: String, version: Int, sha256: String, session: Session, manifest: Manifest?, loadedAt: Double, estimatedBytes: Int64) {
        self.model = model
        self.version = version
        self.sha256 = sha256
        self.session = session
        self.manifest = manifest
        self.loadedAt = loadedAt
        self.estimatedBytes = estimatedBytes
    }
}

/// How a request was routed to the version that answered it.
public enum RoutingDecision: Sendable, Equatable, CustomStringConvertible {
    /// The request named the version.
    case pinned
    /// The model's production alias.
    case production

    public var description: String {
        switch self {
        case .pinned: "pinned"
        case .production: "production"
        }
    }
}

/// An immutable snapshot of what serves: per model, its loaded versions and its production.
/// The lifecycle builds a new table for every change and publishes it whole.
public struct RoutingTable: Sendable {
    public struct ModelRoutes: Sendable {
        public var production: LoadedVersion?
        public var versions: [Int: LoadedVersion]
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

    /// The version that answers a request for `model`, pinned to `version` if given.
    public func resolve(model: String, version: Int? = nil) throws(RegistryError) -> (LoadedVersion, RoutingDecision) {
        let routes = table.withLock { $0.models[model] }
        guard let routes else { throw RegistryError(.notFound, "model '\(model)' not found") }
        if let version {
            guard let loaded = routes.versions[version] else {
                throw RegistryError(.unavailable, "model '\(model)' version \(version) is not loaded")
            }
            return (loaded, .pinned)
        }
        guard let production = routes.production else {
            throw RegistryError(.unavailable, "model '\(model)' has no production version serving")
        }
        return (production, .production)
    }
}
