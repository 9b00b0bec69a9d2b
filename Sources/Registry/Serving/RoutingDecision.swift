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
