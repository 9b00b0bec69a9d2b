/// A set of endpoints and the one question asked of it: which endpoint answers this method and
/// path, and if none does, which methods the path takes (for a 405 and its `Allow` header).
///
/// Invariant, checked when it is made: names are unique, and no two endpoints with the same
/// method can match the same path, so that a request matches at most one endpoint.
public struct EndpointTable: Sendable {
    public let endpoints: [AnyEndpoint]

    public init(_ endpoints: [AnyEndpoint]) {
        precondition(Set(endpoints.map(\.name)).count == endpoints.count, "an endpoint is declared twice")
        for (i, a) in endpoints.enumerated() {
            for b in endpoints[(i + 1)...] where a.method == b.method {
                precondition(!a.path.overlaps(b.path), "\(a) and \(b) can match the same request")
            }
        }
        self.endpoints = endpoints
    }

    /// What the table says about one request.
    public enum Match: Sendable, Equatable {
        /// The endpoint that answers it, and its path's parameters, decoded.
        case found(AnyEndpoint, PathParameters)
        /// The path exists but not with this method: the methods it takes (in `Allow` order), and
        /// the path's parameters as the first endpoint with this path reads them.
        case methodNotAllowed([HTTPMethod], PathParameters)
        /// No endpoint has this path.
        case notFound
    }

    /// Matches `method` (as sent) and `target` (the request target as sent, still escaped).
    public func match(method: String, target: String) -> Match {
        let segments = PathTemplate.segments(of: target)
        var allowed: [HTTPMethod] = []
        var first: PathParameters?
        for endpoint in endpoints {
            guard let parameters = endpoint.path.match(segments: segments, prefix: false) else { continue }
            if endpoint.method.rawValue == method { return .found(endpoint, parameters) }
            allowed.append(endpoint.method)
            first = first ?? parameters
        }
        guard let first else { return .notFound }
        return .methodNotAllowed(Array(Set(allowed)).sorted(), first)
    }

    /// The methods `target`'s path takes, in `Allow` order; empty for an unknown path.
    public func allowedMethods(target: String) -> [HTTPMethod] {
        let segments = PathTemplate.segments(of: target)
        return Array(Set(endpoints.filter { $0.path.match(segments: segments, prefix: false) != nil }.map(\.method))).sorted()
    }

    public subscript(_ name: ControlEndpoints.Name) -> AnyEndpoint {
        guard let endpoint = endpoints.first(where: { $0.name == name }) else { preconditionFailure("no endpoint \(name) in the table") }
        return endpoint
    }
}
