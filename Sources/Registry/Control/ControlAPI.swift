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
                let allowed = ControlEndpoints.table.allowedMethods(target: request.target)
                response.headers.add("Allow", allowed.map(\.rawValue).joined(separator: ", "))
            }
            return response
        }
    }

    /// Finds the request's endpoint in ``ControlEndpoints/table`` and answers it. Checks come in
    /// the order the API has always made them: the model's name (400) first, for any path below
    /// `/v1/models/{model}`; then the path (404) and the method (405); then the endpoint's own.
    private func route(_ request: HTTPRequest, actor: String) throws(RegistryError) -> HTTPResponse {
        switch ControlEndpoints.table.match(method: request.method, target: request.target) {
        case .found(let endpoint, let parameters):
            try checkModelName(parameters)
            return try answer(endpoint.name, parameters, request, actor: actor)
        case .methodNotAllowed(let allowed, let parameters):
            try checkModelName(parameters)
            throw RegistryError(.methodNotAllowed, "\(request.method) is not allowed on \(request.path); use \(allowed.map(\.rawValue).joined(separator: " or "))")
        case .notFound:
            if let scope = ControlEndpoints.modelScope.matchPrefix(request.target) { try checkModelName(scope) }
            throw RegistryError(.notFound, "no endpoint \(request.method) \(request.path); see docs/API.md")
        }
    }

    private func checkModelName(_ parameters: PathParameters) throws(RegistryError) {
        if let model = parameters[.model], !ModelName.isValid(model) {
            throw RegistryError(.invalidArgument, "'\(model)' is not a valid model name")
        }
    }

    /// Answers the endpoint `name`. The switch is exhaustive, so an endpoint added to the table
    /// does not compile until it is answered here.
    private func answer(_ name: ControlEndpoints.Name, _ parameters: PathParameters, _ request: HTTPRequest,
                        actor: String) throws(RegistryError) -> HTTPResponse {
        let started = DispatchTime.now().uptimeNanoseconds
        /// A mutating command's answer, timed from the request's arrival.
        func result(_ action: String, _ outcome: CommandOutcome) -> ActionResult {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
            return ActionResult(model: parameters[required: .model], action: action, version: outcome.version, previous: outcome.previous,
                                message: outcome.message, loadedFirst: outcome.loadedFirst, forced: outcome.forced, eventID: outcome.eventID,
                                elapsedMilliseconds: elapsed)
        }
        switch name {
        case .status:
            return try serve(ControlEndpoints.status, request) { _ in daemonInfo() }
        case .models:
            return try serve(ControlEndpoints.models, request) { _ throws(RegistryError) in try models() }
        case .rescan:
            return try serve(ControlEndpoints.rescan, request) { _ in
                lifecycle.rescanNow()
                let wait = request.queryValue("wait").map { $0 == "true" || $0 == "1" } ?? true
                return RescanResult(idle: wait ? lifecycle.waitUntilIdle(timeout: 120) : false)
            }
        case .reload:
            return try serve(ControlEndpoints.reload, request) { _ throws(RegistryError) in
                let plan = try reload(actor)
                return ReloadResult(changed: plan.changed, restartRequired: plan.restartRequired,
                                    message: plan.changed.isEmpty && plan.restartRequired.isEmpty ? "configuration re-read; nothing changed"
                                        : "configuration reloaded" + (plan.restartRequired.isEmpty ? "" : "; restart to apply " + plan.restartRequired.joined(separator: ", ")))
            }
        case .verifyArtifacts:
            return try serve(ControlEndpoints.verifyArtifacts, request) { _ throws(RegistryError) in try verify(model: request.queryValue("model"), actor: actor) }
        case .events:
            return try serve(ControlEndpoints.events, request) { _ throws(RegistryError) in try events(request) }
        case .verifyEvents:
            return try serve(ControlEndpoints.verifyEvents, request) { _ throws(RegistryError) in
                let check = try catalog.verifyChain()
                return ChainReport(events: check.events, intact: check.isIntact, problems: check.problems)
            }
        case .model:
            return try serve(ControlEndpoints.model, request) { _ throws(RegistryError) in try modelInfo(parameters[required: .model]) }
        case .version:
            let text = parameters[required: .version]
            guard let version = Int(text), version > 0 else { throw RegistryError(.invalidArgument, "version '\(text)' is not a positive integer") }
            return try serve(ControlEndpoints.version, request) { _ throws(RegistryError) in try versionDetail(model: parameters[required: .model], version: version) }
        case .stats:
            return try serve(ControlEndpoints.stats, request) { _ throws(RegistryError) in try stats(model: parameters[required: .model], request) }
        case .servedAt:
            return try serve(ControlEndpoints.servedAt, request) { _ throws(RegistryError) in try servedAt(model: parameters[required: .model], request) }
        case .promote:
            return try serve(ControlEndpoints.promote, request) { body throws(RegistryError) in
                result("promote", try lifecycle.promote(model: parameters[required: .model], version: body.version, force: body.force ?? false,
                                                        actor: actor, reason: body.reason ?? ""))
            }
        case .rollback:
            return try serve(ControlEndpoints.rollback, request) { body throws(RegistryError) in
                result("rollback", try lifecycle.rollback(model: parameters[required: .model], to: body.to, force: body.force ?? false, actor: actor, reason: body.reason ?? ""))
            }
        case .setAlias:
            return try serve(ControlEndpoints.setAlias, request) { body throws(RegistryError) in
                result("alias", try lifecycle.setAlias(model: parameters[required: .model], alias: parameters[required: .alias], version: body.version,
                                                       actor: actor, reason: body.reason ?? ""))
            }
        case .removeAlias:
            return try serve(ControlEndpoints.removeAlias, request) { body throws(RegistryError) in
                result("alias", try lifecycle.setAlias(model: parameters[required: .model], alias: parameters[required: .alias], version: nil,
                                                       actor: actor, reason: body.reason ?? ""))
            }
        case .setSplit:
            return try serve(ControlEndpoints.setSplit, request) { body throws(RegistryError) in
                var weights: [Int: Int] = [:]
                for (key, weight) in body.weights {
                    guard let version = Int(key), version > 0 else { throw RegistryError(.invalidArgument, "split key '\(key)' is not a version number") }
                    weights[version] = weight
                }
                return result("split", try lifecycle.setSplit(model: parameters[required: .model], weights: weights, actor: actor, reason: body.reason ?? ""))
            }
        case .clearSplit:
            return try serve(ControlEndpoints.clearSplit, request) { body throws(RegistryError) in
                result("split", try lifecycle.setSplit(model: parameters[required: .model], weights: nil, actor: actor, reason: body.reason ?? ""))
            }
        case .startRollout:
            return try serve(ControlEndpoints.startRollout, request) { body throws(RegistryError) in
                let plan = RolloutPlan(steps: body.steps ?? [1, 5, 25, 50, 100], intervalSeconds: body.intervalSeconds ?? 300,
                                       maxErrorRate: body.maxErrorRate ?? 0.01, maxLatencyRatio: body.maxLatencyRatio ?? 1.5,
                                       minRequests: body.minRequests ?? 200)
                return ControlAPI.info(try lifecycle.startRollout(model: parameters[required: .model], version: body.version, plan: plan,
                                                                  actor: actor, reason: body.reason ?? ""))
            }
        case .rollout:
            return try serve(ControlEndpoints.rollout, request) { _ throws(RegistryError) in ControlAPI.info(try lifecycle.rollout(model: parameters[required: .model])) }
        case .controlRollout:
            // An unknown command is an unknown endpoint (404), whatever the body says.
            let text = parameters[required: .command]
            guard let command = Lifecycle.RolloutCommand(rawValue: text) else {
                throw RegistryError(.notFound, "no rollout command '\(text)'; use pause, resume or abort")
            }
            return try serve(ControlEndpoints.controlRollout, request) { body throws(RegistryError) in
                ControlAPI.info(try lifecycle.controlRollout(model: parameters[required: .model], command, actor: actor, reason: body.reason ?? ""))
            }
        case .shadow:
            return try serve(ControlEndpoints.shadow, request) { _ throws(RegistryError) in
                let model = parameters[required: .model]
                guard let shadow = try modelInfo(model).shadow else { throw RegistryError(.notFound, "model '\(model)' has no shadow in force") }
                return shadow
            }
        case .setShadow:
            return try serve(ControlEndpoints.setShadow, request) { body throws(RegistryError) in
                result("shadow", try lifecycle.setShadow(model: parameters[required: .model], version: body.version, percent: body.percent ?? 10,
                                                         actor: actor, reason: body.reason ?? ""))
            }
        case .clearShadow:
            return try serve(ControlEndpoints.clearShadow, request) { body throws(RegistryError) in
                result("shadow", try lifecycle.setShadow(model: parameters[required: .model], version: nil, percent: 0, actor: actor, reason: body.reason ?? ""))
            }
        }
    }

    /// Decodes the body the endpoint takes, runs `handler`, and answers 200 with what it returns:
    /// the table's types, not each handler, decide what is read and what is written.
    private func serve<Body, Response>(_ endpoint: Endpoint<Body, Response>, _ request: HTTPRequest,
                                       _ handler: (Body) throws(RegistryError) -> Response) throws(RegistryError) -> HTTPResponse {
        // The body must be JSON whatever Content-Type says: curl's -d labels it form data, and
        // v2 clients send none. A body that is not JSON is refused by the decoder.
        let body: Body
        do {
            body = try Body.decode(request.body)
        } catch {
            throw RegistryError(.invalidArgument, "invalid request body: \(error.message)")
        }
        return HTTPResponse.json(200, APICoding.encode(try handler(body)))
    }
}
