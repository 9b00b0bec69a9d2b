// The states the control API reports, as enums that travel as their plain JSON strings.
//
// Each set is open: a newer registryd may report a name this build has never heard of, and an
// older registryctl must still decode the answer and print the name as sent. So each enum has
// an `unrecognized(String)` case that keeps the text, and decoding never fails on a value.

/// A closed set of known names plus whatever else the other side sends, carried as a JSON string.
///
/// Conforming types implement `rawValue` and a non-failable `init(rawValue:)` that maps unknown
/// text to their `unrecognized` case, so that `init(rawValue: x).rawValue == x` for every `x`:
/// decoding and re-encoding gives back the same bytes.
public protocol OpenName: RawRepresentable<String>, Codable, Sendable, Hashable, CustomStringConvertible {
    init(rawValue: String)
}

extension OpenName {
    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// The name as sent, so that interpolating it prints the API's word.
    public var description: String { rawValue }
}

/// A model version's lifecycle state (`VersionInfo.state`); docs/API.md lists them.
public enum VersionStateName: OpenName {
    case discovered, verifying, loading, ready, candidate, live, shadow, retired, failed, quarantined, missing
    /// A state this build does not know, as the daemon named it.
    case unrecognized(String)

    public static let known: [VersionStateName] = [.discovered, .verifying, .loading, .ready, .candidate, .live, .shadow, .retired,
                                                   .failed, .quarantined, .missing]

    public init(rawValue: String) {
        self = Self.known.first { $0.rawValue == rawValue } ?? .unrecognized(rawValue)
    }

    public var rawValue: String {
        switch self {
        case .discovered: "discovered"
        case .verifying: "verifying"
        case .loading: "loading"
        case .ready: "ready"
        case .candidate: "candidate"
        case .live: "live"
        case .shadow: "shadow"
        case .retired: "retired"
        case .failed: "failed"
        case .quarantined: "quarantined"
        case .missing: "missing"
        case .unrecognized(let text): text
        }
    }
}

/// A rollout's state (`RolloutInfo.state`).
public enum RolloutStateName: OpenName {
    case running, paused, promoted, rolledBack, aborted
    /// A state this build does not know, as the daemon named it.
    case unrecognized(String)

    public static let known: [RolloutStateName] = [.running, .paused, .promoted, .rolledBack, .aborted]

    public init(rawValue: String) {
        self = Self.known.first { $0.rawValue == rawValue } ?? .unrecognized(rawValue)
    }

    public var rawValue: String {
        switch self {
        case .running: "running"
        case .paused: "paused"
        case .promoted: "promoted"
        case .rolledBack: "rolled_back"
        case .aborted: "aborted"
        case .unrecognized(let text): text
        }
    }

    /// Whether the rollout is still in progress (it moves traffic, or will when resumed).
    public var isActive: Bool { self == .running || self == .paused }
}

/// What a version's signature check found (`VersionInfo.signature`).
public enum SignatureStatusName: OpenName {
    /// No signature beside the artifact (allowed unless the model's policy requires one).
    case unsigned
    /// Signed by a trusted key, named in `signature_key`.
    case valid
    /// A status this build does not know, as the daemon named it.
    case unrecognized(String)

    public static let known: [SignatureStatusName] = [.unsigned, .valid]

    public init(rawValue: String) {
        self = Self.known.first { $0.rawValue == rawValue } ?? .unrecognized(rawValue)
    }

    public var rawValue: String {
        switch self {
        case .unsigned: "unsigned"
        case .valid: "valid"
        case .unrecognized(let text): text
        }
    }
}

/// What is on disk under a version's number (`VersionInfo.file`): the admitted bytes, nothing,
/// or other bytes (quarantined; production keeps serving the admitted bytes from memory).
public enum ArtifactFileName: OpenName {
    case present, missing, changed
    /// A name this build does not know, as the daemon sent it.
    case unrecognized(String)

    public static let known: [ArtifactFileName] = [.present, .missing, .changed]

    public init(rawValue: String) {
        self = Self.known.first { $0.rawValue == rawValue } ?? .unrecognized(rawValue)
    }

    public var rawValue: String {
        switch self {
        case .present: "present"
        case .missing: "missing"
        case .changed: "changed"
        case .unrecognized(let text): text
        }
    }
}
