import Synchronization

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
