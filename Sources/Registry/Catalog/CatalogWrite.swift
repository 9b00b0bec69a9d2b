/// One change to the catalog, as a value: what a command decided, before anything is written.
/// A command collects its writes in order (``CommandDraft``); ``Catalog/commit(_:at:beforeCommit:)``
/// writes them in one transaction, every row and event stamped with the command's time.
public enum CatalogWrite: Sendable, Equatable {
    /// Inserts or replaces a version row, with an optional event.
    case saveVersion(VersionRecord, event: EventDraft?)
    /// Changes one version's state and reason, with its event.
    case setState(model: String, version: Int, state: VersionState, reason: String, event: EventDraft)
    /// Points an alias at a version (nil removes it), changing version states with it.
    case setAlias(model: String, alias: String, version: Int?, states: [StateChange], event: EventDraft)
    /// Stores a model's route spec (nil removes it), changing version states with it.
    case setRoute(model: String, spec: String?, states: [StateChange], event: EventDraft)
    /// Inserts (id 0) or updates a rollout, with an optional event.
    case saveRollout(RolloutRecord, event: EventDraft?)
    /// Records bytes found under a known version that differ from its admitted ones, with a
    /// `quarantine` event.
    case quarantine(model: String, version: Int, sha256: String, size: Int64, path: String, reason: String)

    /// The event the write appends, if any.
    public var event: EventDraft? {
        switch self {
        case .saveVersion(_, let event), .saveRollout(_, let event): event
        case .setState(_, _, _, _, let event), .setAlias(_, _, _, _, let event), .setRoute(_, _, _, let event): event
        case .quarantine(let model, let version, let sha256, _, _, let reason):
            EventDraft(action: "quarantine", model: model, version: version, after: sha256, reason: reason)
        }
    }
}

/// A version's new state, written together with an alias or a route.
public struct StateChange: Sendable, Equatable {
    public var version: Int
    public var state: VersionState
    public var reason: String

    public init(_ version: Int, _ state: VersionState, _ reason: String) {
        self.version = version
        self.state = state
        self.reason = reason
    }
}

/// What one committed write produced: the id of the event it appended, and for a rollout, its
/// row id (assigned by the database when the rollout is new).
public struct WriteReceipt: Sendable, Equatable {
    public var eventID: Int64?
    public var rowID: Int64?
}
