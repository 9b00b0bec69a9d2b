/// The body of a control API request: how a client encodes it and how the daemon decodes it.
///
/// The daemon decodes strictly: a key outside ``keys`` is refused, since a misspelt `"froce"`
/// must be an error rather than silently ignored. An empty body decodes as `{}`.
public protocol RequestBody: Codable, Sendable {
    /// The JSON keys the daemon accepts.
    static var keys: Set<String> { get }
    /// The bytes a client sends; nil sends no body at all.
    var encoded: [UInt8]? { get }
    /// The daemon's reading of a request's body bytes.
    static func decode(_ bytes: [UInt8]) throws(APIDecodingError) -> Self
}

extension RequestBody {
    public var encoded: [UInt8]? { APICoding.encode(self) }

    public static func decode(_ bytes: [UInt8]) throws(APIDecodingError) -> Self {
        try APICoding.decodeStrict(Self.self, from: bytes, keys: keys)
    }
}

/// No body: a client sends none, and the daemon reads none (`GET` endpoints).
public struct NoBody: RequestBody, Equatable {
    public static let keys: Set<String> = []

    public init() {}

    public var encoded: [UInt8]? { nil }

    /// Whatever was sent is ignored, as a `GET`'s body is.
    public static func decode(_ bytes: [UInt8]) throws(APIDecodingError) -> NoBody { NoBody() }
}

/// `{}`: a command that takes no options (rescan, reload, verify). Clients send `{}`; the daemon
/// does not read the body, so any body is accepted, as it always has been.
public struct EmptyBody: RequestBody, Equatable {
    public static let keys: Set<String> = []

    public init() {}

    public static func decode(_ bytes: [UInt8]) throws(APIDecodingError) -> EmptyBody { EmptyBody() }
}
