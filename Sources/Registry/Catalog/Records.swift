/// The lifecycle state of a model version, as the catalog stores it.
public enum VersionState: String, Sendable, CaseIterable, Codable {
    case discovered, verifying, loading, ready, candidate, live, shadow, retired
    case failed, quarantined, missing

    /// States in which the version has a loaded session that can answer requests.
    public var isServable: Bool {
        switch self {
        case .ready, .candidate, .live, .shadow: true
        default: false
        }
    }
}

/// One version as the catalog records it.
public struct VersionRecord: Sendable, Equatable {
    public var model: String
    public var version: Int
    public var sha256: String?
    public var size: Int64?
    public var path: String
    public var mtime: Double?
    public var state: VersionState
    public var reason: String
    public var manifest: String?
    public var signatureStatus: String
    public var signatureKey: String?
    public var firstSeen: Double
    public var updatedAt: Double
    /// What is on disk under its number, as last seen (kept in memory: a restart re-hashes
    /// every version that should serve and finds it again). `missing` follows the state.
    public var file: VersionStatus.File = .present
    /// The size of the file on disk while it holds other bytes than the admitted ones and the
    /// admitted bytes still serve from memory (production whose file changed): `size` stays the
    /// admitted artifact's, and the file's identity for the next scan is this size with `mtime`.
    /// Kept in memory only: a restart re-hashes such a version and quarantines it.
    public var fileSize: Int64?

    /// The size the next scan compares with the file's, to tell whether it changed again.
    var identitySize: Int64? { fileSize ?? size }

    /// Its state as four facts (admission, residency, role, file); ``state`` is the word for them.
    public var status: VersionStatus { VersionStatus(state, file: file) }

    public init(
        model: String, version: Int, sha256: String? = nil, size: Int64? = nil, path: String,
        mtime: Double? = nil, state: VersionState, reason: String = "", manifest: String? = nil,
        signatureStatus: String = "unsigned", signatureKey: String? = nil, firstSeen: Double, updatedAt: Double
    ) {
        self.model = model
        self.version = version
        self.sha256 = sha256
        self.size = size
        self.path = path
        self.mtime = mtime
        self.state = state
        self.reason = reason
        self.manifest = manifest
        self.signatureStatus = signatureStatus
        self.signatureKey = signatureKey
        self.firstSeen = firstSeen
        self.updatedAt = updatedAt
    }
}

/// An event to append to the audit trail.
public struct EventDraft: Sendable, Equatable {
    public var actor: String
    public var action: String
    public var model: String?
    public var version: Int?
    public var before: String?
    public var after: String?
    public var reason: String

    /// The daemon itself, for automatic transitions.
    public static let daemon = "registryd"

    public init(
        actor: String = EventDraft.daemon, action: String, model: String? = nil, version: Int? = nil,
        before: String? = nil, after: String? = nil, reason: String = ""
    ) {
        self.actor = actor
        self.action = action
        self.model = model
        self.version = version
        self.before = before
        self.after = after
        self.reason = reason
    }
}

/// An event as stored, with its place in the hash chain.
public struct Event: Sendable, Equatable {
    public var id: Int64
    public var at: Double
    public var draft: EventDraft
    public var previousHash: String
    public var hash: String
}
