/// One endpoint of the control API: its method, its path template, the query parameters it
/// reads, and, as its type parameters, the body it takes and the answer it gives.
///
/// ``ControlEndpoints`` declares every endpoint once. The daemon dispatches by matching requests
/// against that table and decodes and encodes with these types; registryctl builds its requests
/// from the same values, so that the two cannot disagree about a path, a method or a body.
public struct Endpoint<Body: RequestBody, Response: Codable & Sendable>: Sendable, CustomStringConvertible {
    public let name: ControlEndpoints.Name
    public let method: HTTPMethod
    public let path: PathTemplate
    /// The query parameters the daemon reads; a client may send only these.
    public let query: [String]

    init(_ name: ControlEndpoints.Name, _ method: HTTPMethod, _ path: PathTemplate, query: [String] = []) {
        self.name = name
        self.method = method
        self.path = path
        self.query = query
    }

    /// `POST /v1/models/{model}/promote`.
    public var description: String { "\(method.rawValue) \(path)" }

    /// The endpoint without its Swift types, as the table holds it.
    public var erased: AnyEndpoint {
        AnyEndpoint(name: name, method: method, path: path, query: query, body: Body.self, response: Response.self)
    }

    /// The request that calls this endpoint. Path parameters and query values are escaped here;
    /// query items whose value is nil are left out. A path parameter the template does not name,
    /// or a query name the endpoint does not read, is a bug in the caller and traps.
    public func request(_ parameters: PathParameters = [:], query items: [(String, String?)] = [], body: Body) -> APIRequest {
        var target = path.render(parameters)
        let present = items.compactMap { name, value in value.map { (name, $0) } }
        for (name, _) in present { precondition(query.contains(name), "\(self) reads no query parameter '\(name)'") }
        if !present.isEmpty {
            target += "?" + present.map { "\(PathTemplate.escape($0.0))=\(PathTemplate.escape($0.1))" }.joined(separator: "&")
        }
        return APIRequest(method: method, target: target, body: body.encoded)
    }
}

extension Endpoint where Body == NoBody {
    /// The request that calls an endpoint that takes no body.
    public func request(_ parameters: PathParameters = [:], query items: [(String, String?)] = []) -> APIRequest {
        request(parameters, query: items, body: NoBody())
    }
}

/// An ``Endpoint`` without its Swift types: what matching a request and the `Allow` header need.
/// Two are equal when they name the same endpoint (names are unique in the table).
public struct AnyEndpoint: Sendable, Hashable, CustomStringConvertible {
    public let name: ControlEndpoints.Name
    public let method: HTTPMethod
    public let path: PathTemplate
    public let query: [String]
    /// The body it takes and the answer it gives.
    public let body: any RequestBody.Type
    public let response: any (Codable & Sendable).Type

    public var description: String { "\(method.rawValue) \(path)" }

    public static func == (a: AnyEndpoint, b: AnyEndpoint) -> Bool { a.name == b.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
}

/// A control API request as a client sends it: method, escaped target and body bytes (nil: none).
public struct APIRequest: Sendable, Equatable {
    public var method: HTTPMethod
    public var target: String
    public var body: [UInt8]?

    public init(method: HTTPMethod, target: String, body: [UInt8]?) {
        self.method = method
        self.target = target
        self.body = body
    }
}
