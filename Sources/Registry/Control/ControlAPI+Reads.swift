import Foundation
import InferenceCodec
import Runtime
import Wire

/// The control API's reads: the catalog's and the lifecycle's state as the wire types report it.
extension ControlAPI {
    func daemonInfo() -> DaemonInfo {
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
                    updatedAt: record.updatedAt, traffic: traffic, file: ArtifactFileName(rawValue: record.status.file.rawValue))
            }
            return ModelInfo(name: status.name, production: production, aliases: status.aliases,
                             split: split.map { Dictionary(uniqueKeysWithValues: $0.map { (String($0.key), $0.value) }) }, versions: versions,
                             shadow: reports[status.name].map { ControlAPI.info($0, queued: queued) },
                             rollout: snapshot.rollouts[status.name].map(ControlAPI.info))
        }
    }

    /// One model, or 404.
    func modelInfo(_ model: String) throws(RegistryError) -> ModelInfo {
        guard let info = try models().first(where: { $0.name == model }) else { throw RegistryError(.notFound, "model '\(model)' not found") }
        return info
    }

    func versionDetail(model: String, version: Int) throws(RegistryError) -> VersionDetail {
        let info = try modelInfo(model)
        guard let versionInfo = info.versions.first(where: { $0.version == version }) else {
            throw RegistryError(.notFound, "model '\(model)' version \(version) not found")
        }
        let loaded = try? lifecycle.router.resolve(model: model, version: version).0
        let record = try catalog.version(model: model, version: version)
        return VersionDetail(model: model, info: versionInfo,
                             inputs: loaded.map { $0.servable.signature.inputs.map(ControlAPI.meta) },
                             outputs: loaded.map { $0.servable.signature.outputs.map(ControlAPI.meta) },
                             manifest: record?.manifest, memoryEstimateBytes: loaded?.estimatedBytes, memoryMeasuredBytes: loaded?.measuredBytes,
                             steps: (loaded?.servable as? PipelineServable).map { ControlAPI.steps(of: $0.spec) })
    }

    /// Requests per minute and version over the last `minutes` (1...100000, default 60).
    func stats(model: String, _ request: HTTPRequest) throws(RegistryError) -> [StatsPoint] {
        var minutes = 60
        if let text = request.queryValue("minutes") {
            guard let value = Int(text), (1...100_000).contains(value) else { throw RegistryError(.invalidArgument, "'minutes' must be an integer in 1...100000") }
            minutes = value
        }
        guard lifecycle.snapshot().models.contains(where: { $0.name == model }) else { throw RegistryError(.notFound, "model '\(model)' not found") }
        let since = Int64((Date().timeIntervalSince1970 / 60).rounded(.down)) - Int64(minutes) + 1
        return try catalog.stats(model: model, sinceMinute: since).map { row in
            let window = WindowStats(row.series)
            return StatsPoint(version: row.version, at: Double(row.minute) * 60, time: APICoding.time(Double(row.minute) * 60),
                              requests: row.series.requests, errors: row.series.errors,
                              meanSeconds: row.series.requests > 0 ? row.series.seconds / Double(row.series.requests) : nil, p99Seconds: window.p99)
        }
    }

    /// What answered the model's unpinned requests at the query's `at`.
    func servedAt(model: String, _ request: HTTPRequest) throws(RegistryError) -> ServedAt {
        guard let text = request.queryValue("at"), let at = ControlAPI.parseTime(text) else {
            throw RegistryError(.invalidArgument, "query parameter 'at' must be seconds since 1970 or an ISO 8601 time (2026-11-23T14:03:00Z)")
        }
        let served = try lifecycle.servedAt(model: model, at: at)
        return ServedAt(model: model, at: at, time: APICoding.time(at), version: served.version,
                        split: served.split.map { Dictionary(uniqueKeysWithValues: $0.map { (String($0.key), $0.value) }) },
                        eventID: served.eventID, since: served.since)
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

    func events(_ request: HTTPRequest) throws(RegistryError) -> [EventInfo] {
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

    func verify(model: String?, actor: String) throws(RegistryError) -> VerifyReport {
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

extension ControlAPI {
    /// A pipeline's steps as the control API shows them.
    static func steps(of spec: PipelineSpec) -> [PipelineStepInfo] {
        spec.steps.map { step in
            let inputs = Dictionary(uniqueKeysWithValues: step.inputs.map { ($0.name, $0.source.description) })
            switch step.target {
            case .model(let ref):
                return PipelineStepInfo(id: step.id, calls: [ref.description], switchOn: nil, inputs: inputs)
            case .choose(let on, let cases, let fallback):
                let calls = cases.keys.sorted().map { "\($0) -> \(cases[$0]!)" } + (fallback.map { ["default -> \($0)"] } ?? [])
                return PipelineStepInfo(id: step.id, calls: calls, switchOn: on.description, inputs: inputs)
            }
        }
    }
}
