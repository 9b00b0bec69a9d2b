import Foundation
import InferenceCodec
import Runtime
import Wire

/// The control API (`/v1/...`): reads and changes the registry on behalf of an operator.
/// Every mutating request records its actor (from the socket's peer credentials) and the
/// `reason` in its body. docs/API.md documents each endpoint with an example.
///
/// Stateless and thread-safe: it translates HTTP to ``Lifecycle`` and ``Catalog`` calls, which
/// own the state.
public struct ControlAPI: Sendable {
    let lifecycle: Lifecycle
    let catalog: Catalog
    let config: DaemonConfig
    let startedAt: Double
    /// Re-reads the configuration (the daemon's ``Daemon/reload(actor:)``), given the actor.
    let reload: @Sendable (String) throws(RegistryError) -> ConfigReload

    public init(lifecycle: Lifecycle, catalog: Catalog, config: DaemonConfig, startedAt: Double,
                reload: @escaping @Sendable (String) throws(RegistryError) -> ConfigReload = { _ throws(RegistryError) in
                    throw RegistryError(.unavailable, "this daemon was not started from a configuration directory; nothing to reload")
                }) {
        self.lifecycle = lifecycle
        self.catalog = catalog
        self.config = config
        self.startedAt = startedAt
        self.reload = reload
    }

    /// Answers one `/v1` request.
    public func handle(_ request: HTTPRequest, actor: String) -> HTTPResponse {
        do throws(RegistryError) {
            return try route(request, actor: actor)
        } catch {
            var response = HTTPResponse.error(error.httpStatus, error.message)
            if error.code == .methodNotAllowed {
                response.headers.add("Allow", ControlAPI.allowedMethods(Array(request.pathSegments.dropFirst())).joined(separator: ", "))
            }
            return response
        }
    }

    private func route(_ request: HTTPRequest, actor: String) throws(RegistryError) -> HTTPResponse {
        let segments = Array(request.pathSegments.dropFirst())  // after "v1"
        let method = request.method
        switch (method, segments.count, segments.first) {
        case ("GET", 1, "status"):
            return ok(daemonInfo())
        case ("GET", 1, "models"):
            return ok(try models())
        case ("POST", 1, "rescan"):
            lifecycle.rescanNow()
            let wait = request.queryValue("wait").map { $0 == "true" || $0 == "1" } ?? true
            let idle = wait ? lifecycle.waitUntilIdle(timeout: 120) : false
            return ok(["rescanned": true, "idle": idle])
        case ("POST", 1, "reload"):
            let plan = try reload(actor)
            return ok(ReloadResult(changed: plan.changed, restartRequired: plan.restartRequired,
                                   message: plan.changed.isEmpty && plan.restartRequired.isEmpty ? "configuration re-read; nothing changed"
                                       : "configuration reloaded" + (plan.restartRequired.isEmpty ? "" : "; restart to apply " + plan.restartRequired.joined(separator: ", "))))
        case ("POST", 1, "verify"):
            return ok(try verify(model: request.queryValue("model"), actor: actor))
        case ("GET", 1, "events"):
            return ok(try events(request))
        case ("GET", 2, "events") where segments[1] == "verify":
            let check = try catalog.verifyChain()
            return ok(ChainReport(events: check.events, intact: check.isIntact, problems: check.problems))
        default:
            break
        }
        guard segments.count >= 2, segments[0] == "models" else {
            throw ControlAPI.noEndpoint(request)
        }
        let model = segments[1]
        guard ModelName.isValid(model) else {
            throw RegistryError(.invalidArgument, "'\(model)' is not a valid model name")
        }
        let rest = Array(segments.dropFirst(2))
        let started = DispatchTime.now().uptimeNanoseconds
        func result(_ action: String, _ outcome: CommandOutcome) -> HTTPResponse {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
            return ok(ActionResult(model: model, action: action, version: outcome.version, previous: outcome.previous, message: outcome.message,
                                   loadedFirst: outcome.loadedFirst, forced: outcome.forced, eventID: outcome.eventID, elapsedMilliseconds: elapsed))
        }
        switch (method, rest.count, rest.first) {
        case ("GET", 0, _):
            guard let info = try models().first(where: { $0.name == model }) else { throw RegistryError(.notFound, "model '\(model)' not found") }
            return ok(info)
        case ("GET", 2, "versions"):
            guard let version = Int(rest[1]), version > 0 else { throw RegistryError(.invalidArgument, "version '\(rest[1])' is not a positive integer") }
            return ok(try versionDetail(model: model, version: version))
        case ("POST", 1, "promote"):
            let body = try decode(PromoteRequest.self, request, keys: ["version", "force", "reason"])
            return result("promote", try lifecycle.promote(model: model, version: body.version, force: body.force ?? false, actor: actor, reason: body.reason ?? ""))
        case ("POST", 1, "rollback"):
            let body = try decode(RollbackRequest.self, request, keys: ["to", "reason"])
            return result("rollback", try lifecycle.rollback(model: model, to: body.to, actor: actor, reason: body.reason ?? ""))
        case ("PUT", 2, "aliases"):
            let body = try decode(AliasRequest.self, request, keys: ["version", "reason"])
            return result("alias", try lifecycle.setAlias(model: model, alias: rest[1], version: body.version, actor: actor, reason: body.reason ?? ""))
        case ("DELETE", 2, "aliases"):
            let body = try decode(ReasonRequest.self, request, keys: ["reason"])
            return result("alias", try lifecycle.setAlias(model: model, alias: rest[1], version: nil, actor: actor, reason: body.reason ?? ""))
        case ("PUT", 1, "split"):
            let body = try decode(SplitRequest.self, request, keys: ["weights", "reason"])
            var weights: [Int: Int] = [:]
            for (key, weight) in body.weights {
                guard let version = Int(key), version > 0 else { throw RegistryError(.invalidArgument, "split key '\(key)' is not a version number") }
                weights[version] = weight
            }
            return result("split", try lifecycle.setSplit(model: model, weights: weights, actor: actor, reason: body.reason ?? ""))
        case ("DELETE", 1, "split"):
            let body = try decode(ReasonRequest.self, request, keys: ["reason"])
            return result("split", try lifecycle.setSplit(model: model, weights: nil, actor: actor, reason: body.reason ?? ""))
        case ("GET", 1, "served-at"):
            guard let text = request.queryValue("at"), let at = ControlAPI.parseTime(text) else {
                throw RegistryError(.invalidArgument, "query parameter 'at' must be seconds since 1970 or an ISO 8601 time (2026-11-23T14:03:00Z)")
            }
            let served = try lifecycle.servedAt(model: model, at: at)
            return ok(ServedAt(model: model, at: at, time: APICoding.time(at), version: served.version,
                               split: served.split.map { Dictionary(uniqueKeysWithValues: $0.map { (String($0.key), $0.value) }) },
                               eventID: served.eventID, since: served.since))
        case ("POST", 1, "rollout"):
            let body = try decode(RolloutStartRequest.self, request, keys: RolloutStartRequest.keys)
            let plan = RolloutPlan(steps: body.steps ?? [1, 5, 25, 50, 100], intervalSeconds: body.intervalSeconds ?? 300,
                                   maxErrorRate: body.maxErrorRate ?? 0.01, maxLatencyRatio: body.maxLatencyRatio ?? 1.5,
                                   minRequests: body.minRequests ?? 200)
            return ok(ControlAPI.info(try lifecycle.startRollout(model: model, version: body.version, plan: plan, actor: actor, reason: body.reason ?? "")))
        case ("GET", 1, "rollout"):
            return ok(ControlAPI.info(try lifecycle.rollout(model: model)))
        case ("POST", 2, "rollout"):
            guard let command = Lifecycle.RolloutCommand(rawValue: rest[1]) else {
                throw RegistryError(.notFound, "no rollout command '\(rest[1])'; use pause, resume or abort")
            }
            let body = try decode(ReasonRequest.self, request, keys: ["reason"])
            return ok(ControlAPI.info(try lifecycle.controlRollout(model: model, command, actor: actor, reason: body.reason ?? "")))
        case ("PUT", 1, "shadow"):
            let body = try decode(ShadowRequest.self, request, keys: ["version", "percent", "reason"])
            return result("shadow", try lifecycle.setShadow(model: model, version: body.version, percent: body.percent ?? 10, actor: actor, reason: body.reason ?? ""))
        case ("DELETE", 1, "shadow"):
            let body = try decode(ReasonRequest.self, request, keys: ["reason"])
            return result("shadow", try lifecycle.setShadow(model: model, version: nil, percent: 0, actor: actor, reason: body.reason ?? ""))
        case ("GET", 1, "stats"):
            var minutes = 60
            if let text = request.queryValue("minutes") {
                guard let value = Int(text), (1...100_000).contains(value) else { throw RegistryError(.invalidArgument, "'minutes' must be an integer in 1...100000") }
                minutes = value
            }
            guard lifecycle.snapshot().models.contains(where: { $0.name == model }) else { throw RegistryError(.notFound, "model '\(model)' not found") }
            let since = Int64((Date().timeIntervalSince1970 / 60).rounded(.down)) - Int64(minutes) + 1
            return ok(try catalog.stats(model: model, sinceMinute: since).map { row in
                let window = WindowStats(row.series)
                return StatsPoint(version: row.version, at: Double(row.minute) * 60, time: APICoding.time(Double(row.minute) * 60),
                                  requests: row.series.requests, errors: row.series.errors,
                                  meanSeconds: row.series.requests > 0 ? row.series.seconds / Double(row.series.requests) : nil, p99Seconds: window.p99)
            })
        case ("GET", 1, "shadow"):
            guard let info = try models().first(where: { $0.name == model }) else { throw RegistryError(.notFound, "model '\(model)' not found") }
            guard let shadow = info.shadow else { throw RegistryError(.notFound, "model '\(model)' has no shadow in force") }
            return ok(shadow)
        default:
            throw ControlAPI.noEndpoint(request)
        }
    }

    /// 405 naming the methods the path takes, when it exists with other methods; else 404.
    private static func noEndpoint(_ request: HTTPRequest) -> RegistryError {
        let allowed = allowedMethods(Array(request.pathSegments.dropFirst()))
        if !allowed.isEmpty {
            return RegistryError(.methodNotAllowed, "\(request.method) is not allowed on \(request.path); use \(allowed.joined(separator: " or "))")
        }
        return RegistryError(.notFound, "no endpoint \(request.method) \(request.path); see docs/API.md")
    }

    /// The methods each `/v1` path takes (segments after `v1`); empty for an unknown path.
    static func allowedMethods(_ segments: [String]) -> [String] {
        switch segments.count {
        case 1:
            return ["status": ["GET"], "models": ["GET"], "rescan": ["POST"], "reload": ["POST"], "verify": ["POST"], "events": ["GET"]][segments[0]] ?? []
        case 2 where segments[0] == "events" && segments[1] == "verify":
            return ["GET"]
        case 2 where segments[0] == "models":
            return ["GET"]
        case 3 where segments[0] == "models":
            return ["promote": ["POST"], "rollback": ["POST"], "split": ["PUT", "DELETE"], "served-at": ["GET"],
                    "rollout": ["GET", "POST"], "shadow": ["GET", "PUT", "DELETE"], "stats": ["GET"]][segments[2]] ?? []
        case 4 where segments[0] == "models":
            return ["versions": ["GET"], "aliases": ["PUT", "DELETE"], "rollout": ["POST"]][segments[2]] ?? []
        default:
            return []
        }
    }

    private func ok<T: Encodable>(_ value: T) -> HTTPResponse {
        HTTPResponse.json(200, APICoding.encode(value))
    }

    private func decode<T: Decodable>(_ type: T.Type, _ request: HTTPRequest, keys: Set<String>) throws(RegistryError) -> T {
        // The body must be JSON whatever Content-Type says: curl's -d labels it form data, and
        // v2 clients send none. A body that is not JSON is refused by the decoder below.
        do {
            return try APICoding.decodeStrict(type, from: request.body, keys: keys)
        } catch {
            throw RegistryError(.invalidArgument, "invalid request body: \(error.message)")
        }
    }

    // MARK: Reads

    private func daemonInfo() -> DaemonInfo {
        let snapshot = lifecycle.snapshot()
        return DaemonInfo(name: "registryd", version: Daemon.version, pid: getpid(), uptimeSeconds: Date().timeIntervalSince1970 - startedAt,
                          modelRoot: config.modelRoot, database: config.database, controlSocket: config.controlSocket, listen: config.listen,
                          models: snapshot.models.count, loadedVersions: snapshot.models.reduce(0) { $0 + $1.loadedVersions.count })
    }

    func models() throws(RegistryError) -> [ModelInfo] {
        let snapshot = lifecycle.snapshot()
        let reports = lifecycle.mirror.reports()
        let queued = lifecycle.mirror.queued
        return snapshot.models.map { status in
            let split = snapshot.splits[status.name]
            let production = status.aliases["production"]
            let versions = status.versions.map { record in
                let traffic: Double = if let split { Double(split[record.version] ?? 0) / 100 }
                    else if record.version == production && status.loadedVersions.contains(record.version) { 1 } else { 0 }
                return VersionInfo(
                    version: record.version, state: VersionStateName(rawValue: record.state.rawValue), reason: record.reason, sha256: record.sha256, size: record.size,
                    path: record.path, loaded: status.loadedVersions.contains(record.version),
                    aliases: status.aliases.filter { $0.value == record.version }.map(\.key).sorted(),
                    signature: SignatureStatusName(rawValue: record.signatureStatus), signatureKey: record.signatureKey, firstSeen: record.firstSeen,
                    updatedAt: record.updatedAt, traffic: traffic)
            }
            return ModelInfo(name: status.name, production: production, aliases: status.aliases,
                             split: split.map { Dictionary(uniqueKeysWithValues: $0.map { (String($0.key), $0.value) }) }, versions: versions,
                             shadow: reports[status.name].map { ControlAPI.info($0, queued: queued) },
                             rollout: snapshot.rollouts[status.name].map(ControlAPI.info))
        }
    }

    private func versionDetail(model: String, version: Int) throws(RegistryError) -> VersionDetail {
        guard let info = try models().first(where: { $0.name == model }) else { throw RegistryError(.notFound, "model '\(model)' not found") }
        guard let versionInfo = info.versions.first(where: { $0.version == version }) else {
            throw RegistryError(.notFound, "model '\(model)' version \(version) not found")
        }
        let loaded = try? lifecycle.router.resolve(model: model, version: version).0
        let record = try catalog.version(model: model, version: version)
        return VersionDetail(model: model, info: versionInfo,
                             inputs: loaded.map { $0.servable.signature.inputs.map(ControlAPI.meta) },
                             outputs: loaded.map { $0.servable.signature.outputs.map(ControlAPI.meta) },
                             manifest: record?.manifest, memoryEstimateBytes: loaded?.estimatedBytes, memoryMeasuredBytes: loaded?.measuredBytes)
    }

    static func info(_ r: RolloutRecord) -> RolloutInfo {
        func window(_ w: WindowStats) -> RolloutInfo.Window {
            RolloutInfo.Window(requests: w.requests, errors: w.errors, errorRate: w.errorRate, p99Seconds: w.p99)
        }
        return RolloutInfo(model: r.model, version: r.version, baseline: r.baseline, state: RolloutStateName(rawValue: r.state.rawValue), step: r.step + 1,
                           steps: r.plan.steps, percent: r.percent, note: r.note, intervalSeconds: r.plan.intervalSeconds,
                           stepStartedAt: r.stepStartedAt, maxErrorRate: r.plan.maxErrorRate, maxLatencyRatio: r.plan.maxLatencyRatio,
                           minRequests: r.plan.minRequests, canary: window(r.canary), baselineWindow: window(r.baselineStats), startedAt: r.startedAt)
    }

    static func info(_ r: ShadowMirror.Report, queued: Int) -> ShadowInfo {
        ShadowInfo(model: r.model, version: r.version, percent: r.percent, mirrored: r.mirrored, dropped: r.dropped, failed: r.failed,
                   method: r.method, output: r.output, comparedRows: r.comparedRows, agreedRows: r.agreedRows, agreement: r.agreement,
                   maxAbsDiff: r.maxAbsDiff, shadowMeanSeconds: r.runs > 0 ? r.shadowSeconds / Double(r.runs) : nil,
                   primaryMeanSeconds: r.runs > 0 ? r.primarySeconds / Double(r.runs) : nil, queued: queued)
    }

    static func meta(_ info: TensorInfo) -> TensorMeta {
        TensorMeta(name: info.name, datatype: DataType(info.elementType).rawValue, shape: info.shape.map(\.value))
    }

    private func events(_ request: HTTPRequest) throws(RegistryError) -> [EventInfo] {
        var since: Double?
        var until: Double?
        if let text = request.queryValue("since") {
            guard let value = ControlAPI.parseTime(text) else { throw RegistryError(.invalidArgument, "'since' must be seconds since 1970 or an ISO 8601 time") }
            since = value
        }
        if let text = request.queryValue("until") {
            guard let value = ControlAPI.parseTime(text) else { throw RegistryError(.invalidArgument, "'until' must be seconds since 1970 or an ISO 8601 time") }
            until = value
        }
        var limit = 1000
        if let text = request.queryValue("limit") {
            guard let value = Int(text), value > 0, value <= 100_000 else { throw RegistryError(.invalidArgument, "'limit' must be an integer in 1...100000") }
            limit = value
        }
        let actions = request.queryValue("action").map { $0.split(separator: ",").map(String.init) } ?? []
        // The newest `limit` events, oldest first.
        let newest = try catalog.events(model: request.queryValue("model"), actions: actions, since: since, until: until, limit: limit, newest: true)
        return newest.map { event in
            EventInfo(id: event.id, at: event.at, time: APICoding.time(event.at), actor: event.draft.actor, action: event.draft.action,
                      model: event.draft.model, version: event.draft.version, before: event.draft.before, after: event.draft.after,
                      reason: event.draft.reason, hash: event.hash)
        }
    }

    private func verify(model: String?, actor: String) throws(RegistryError) -> VerifyReport {
        let results = try lifecycle.verifyArtifacts(model: model, actor: actor)
        let items = results.map { VerifyReport.Item(model: $0.model, version: $0.version, ok: $0.problem == nil, sha256: $0.sha256, problem: $0.problem) }
        return VerifyReport(checked: items.count, failed: items.filter { !$0.ok }.count, items: items)
    }

    /// Seconds since 1970, or ISO 8601 (`2026-11-23T14:03:00Z`, fractional seconds allowed).
    public static func parseTime(_ text: String) -> Double? {
        if let seconds = Double(text), seconds.isFinite { return seconds }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)?.timeIntervalSince1970
    }
}
