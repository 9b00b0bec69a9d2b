/// The control API (`/v1`), every endpoint once: the daemon's dispatch, its `405 Allow` header
/// and registryctl's requests all read this table. docs/API.md documents each endpoint.
///
/// Adding an endpoint: a case in ``Name``, a value below, an entry in ``table``; the daemon's
/// `ControlAPI` then fails to compile until it answers the new name.
public enum ControlEndpoints {
    /// Each endpoint's identity, which the daemon switches on to answer it.
    public enum Name: String, Sendable, Hashable, CaseIterable {
        case status, models, rescan, reload, verifyArtifacts, events, verifyEvents
        case model, version, promote, rollback, setAlias, removeAlias, setSplit, clearSplit, servedAt
        case startRollout, rollout, controlRollout, shadow, setShadow, clearShadow, stats
    }

    // MARK: The daemon

    /// The daemon itself: version, pid, uptime, paths, counts.
    public static let status = Endpoint<NoBody, DaemonInfo>(.status, .get, "/v1/status")
    /// Rescan the model root now; `wait` (default true) waits until admissions finish.
    public static let rescan = Endpoint<EmptyBody, RescanResult>(.rescan, .post, "/v1/rescan", query: ["wait"])
    /// Re-read the configuration, as SIGHUP does.
    public static let reload = Endpoint<EmptyBody, ReloadResult>(.reload, .post, "/v1/reload")
    /// Re-hash every recorded artifact, or one `model`'s.
    public static let verifyArtifacts = Endpoint<EmptyBody, VerifyReport>(.verifyArtifacts, .post, "/v1/verify", query: ["model"])

    // MARK: The audit trail

    /// The newest `limit` events, oldest first, filtered by `model`, `action` (comma-separated) and time.
    public static let events = Endpoint<NoBody, [EventInfo]>(.events, .get, "/v1/events", query: ["model", "action", "since", "until", "limit"])
    /// The hash chain walked end to end.
    public static let verifyEvents = Endpoint<NoBody, ChainReport>(.verifyEvents, .get, "/v1/events/verify")

    // MARK: Models and versions

    /// Every model with its versions, aliases and traffic.
    public static let models = Endpoint<NoBody, [ModelInfo]>(.models, .get, "/v1/models")
    /// One model.
    public static let model = Endpoint<NoBody, ModelInfo>(.model, .get, "/v1/models/{model}")
    /// One version in detail: signature, manifest, memory.
    public static let version = Endpoint<NoBody, VersionDetail>(.version, .get, "/v1/models/{model}/versions/{version}")
    /// Requests per minute and version over the last `minutes` (default 60).
    public static let stats = Endpoint<NoBody, [StatsPoint]>(.stats, .get, "/v1/models/{model}/stats", query: ["minutes"])
    /// What served the model's unpinned requests `at` a time.
    public static let servedAt = Endpoint<NoBody, ServedAt>(.servedAt, .get, "/v1/models/{model}/served-at", query: ["at"])

    // MARK: Traffic

    public static let promote = Endpoint<PromoteRequest, ActionResult>(.promote, .post, "/v1/models/{model}/promote")
    public static let rollback = Endpoint<RollbackRequest, ActionResult>(.rollback, .post, "/v1/models/{model}/rollback")
    public static let setAlias = Endpoint<AliasRequest, ActionResult>(.setAlias, .put, "/v1/models/{model}/aliases/{alias}")
    public static let removeAlias = Endpoint<ReasonRequest, ActionResult>(.removeAlias, .delete, "/v1/models/{model}/aliases/{alias}")
    public static let setSplit = Endpoint<SplitRequest, ActionResult>(.setSplit, .put, "/v1/models/{model}/split")
    public static let clearSplit = Endpoint<ReasonRequest, ActionResult>(.clearSplit, .delete, "/v1/models/{model}/split")

    // MARK: Rollouts and shadows

    public static let startRollout = Endpoint<RolloutStartRequest, RolloutInfo>(.startRollout, .post, "/v1/models/{model}/rollout")
    /// The model's latest rollout.
    public static let rollout = Endpoint<NoBody, RolloutInfo>(.rollout, .get, "/v1/models/{model}/rollout")
    /// `{command}` is `pause`, `resume` or `abort`.
    public static let controlRollout = Endpoint<ReasonRequest, RolloutInfo>(.controlRollout, .post, "/v1/models/{model}/rollout/{command}")
    /// The shadow in force, with what its mirror has measured.
    public static let shadow = Endpoint<NoBody, ShadowInfo>(.shadow, .get, "/v1/models/{model}/shadow")
    public static let setShadow = Endpoint<ShadowRequest, ActionResult>(.setShadow, .put, "/v1/models/{model}/shadow")
    public static let clearShadow = Endpoint<ReasonRequest, ActionResult>(.clearShadow, .delete, "/v1/models/{model}/shadow")

    /// Every endpoint above, each once (checked here: a missing or repeated one traps at first use).
    public static let table: EndpointTable = {
        let table = EndpointTable([
            status.erased, rescan.erased, reload.erased, verifyArtifacts.erased, events.erased, verifyEvents.erased,
            models.erased, model.erased, version.erased, stats.erased, servedAt.erased,
            promote.erased, rollback.erased, setAlias.erased, removeAlias.erased, setSplit.erased, clearSplit.erased,
            startRollout.erased, rollout.erased, controlRollout.erased, shadow.erased, setShadow.erased, clearShadow.erased,
        ])
        precondition(Set(table.endpoints.map(\.name)) == Set(Name.allCases), "the table and ControlEndpoints.Name differ")
        return table
    }()

    /// Every path below `/v1/models/{model}`, endpoint or not: the daemon checks the model's name
    /// before anything else there, so that a bad name is reported as one, not as a missing endpoint.
    public static let modelScope: PathTemplate = "/v1/models/{model}"
}
