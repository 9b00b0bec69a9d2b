import Foundation
import Testing
import Wire
@testable import Registry

/// The control API's contract as one table: the daemon dispatches by it, answers 405 from it,
/// and its names for states agree with the daemon's.
@Suite("control endpoints", .serialized)
struct ControlEndpointTests {
    /// A registry with digits versions 1 (production) and 2, both ready.
    func twoVersions() throws -> TestRegistry {
        let registry = try TestRegistry.digitsOneAndTwo()
        return registry
    }

    func send(_ client: HTTPTestClient, _ request: APIRequest) throws -> HTTPResponse {
        try client.send(request.method.rawValue, request.target, body: request.body)
    }

    @Test("every endpoint in the table is reachable: a request built from it reaches its handler, which answers with the table's response type")
    func everyEndpointReachable() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let digits: PathParameters = [.model: "digits"]
        typealias E = ControlEndpoints
        // In an order in which each command is allowed, and each succeeds (reload excepted: a
        // daemon started without a configuration directory answers 503 from the handler).
        let requests: [(APIRequest, Int)] = [
            (E.status.request(), 200), (E.models.request(), 200), (E.model.request(digits), 200),
            (E.version.request([.model: "digits", .version: "2"]), 200), (E.stats.request(digits, query: [("minutes", "5")]), 200),
            (E.servedAt.request(digits, query: [("at", String(Date().timeIntervalSince1970))]), 200),
            (E.promote.request(digits, body: PromoteRequest(version: 2, reason: "table")), 200),
            (E.rollback.request(digits, body: RollbackRequest(reason: "table")), 200),
            (E.setAlias.request([.model: "digits", .alias: "stable"], body: AliasRequest(version: 2)), 200),
            (E.removeAlias.request([.model: "digits", .alias: "stable"], body: ReasonRequest()), 200),
            (E.setSplit.request(digits, body: SplitRequest(weights: ["1": 90, "2": 10])), 200),
            (E.clearSplit.request(digits, body: ReasonRequest()), 200),
            (E.setShadow.request(digits, body: ShadowRequest(version: 2, percent: 10)), 200), (E.shadow.request(digits), 200),
            (E.clearShadow.request(digits, body: ReasonRequest()), 200),
            (E.startRollout.request(digits, body: RolloutStartRequest(version: 2, steps: [5, 100])), 200), (E.rollout.request(digits), 200),
            (E.controlRollout.request([.model: "digits", .command: "abort"], body: ReasonRequest()), 200),
            (E.rescan.request(query: [("wait", "false")], body: EmptyBody()), 200), (E.reload.request(body: EmptyBody()), 503),
            (E.verifyArtifacts.request(query: [("model", "digits")], body: EmptyBody()), 200),
            (E.events.request(query: [("model", "digits"), ("limit", "5")]), 200), (E.verifyEvents.request(), 200),
        ]
        var reached: Set<ControlEndpoints.Name> = []
        for (request, status) in requests {
            guard case .found(let endpoint, _) = ControlEndpoints.table.match(method: request.method.rawValue, target: request.target) else {
                Issue.record("\(request.method) \(request.target) matches no endpoint")
                continue
            }
            reached.insert(endpoint.name)
            let response = try send(client, request)
            let text = String(decoding: response.body, as: UTF8.self)
            #expect(response.status == status, "\(endpoint): \(response.status) \(text)")
            if response.status == 200 {
                #expect(throws: Never.self, "\(endpoint) answers \(endpoint.response): \(text)") { _ = try APICoding.decode(endpoint.response, from: response.body) }
            }
        }
        #expect(reached == Set(ControlEndpoints.Name.allCases), "not reached: \(Set(ControlEndpoints.Name.allCases).subtracting(reached))")
    }

    @Test("a path with a method the table does not list for it is 405, with exactly the table's methods for that path in Allow")
    func wrongMethodIs405() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        for endpoint in ControlEndpoints.table.endpoints {
            var parameters: PathParameters = [:]
            for name in endpoint.path.parameters { parameters[name] = ["model": "digits", "version": "1", "alias": "stable", "command": "pause"][name.rawValue] }
            let target = endpoint.path.render(parameters)
            let listed = ControlEndpoints.table.endpoints.filter { $0.path == endpoint.path }.map(\.method)
            let allow = HTTPMethod.allCases.filter(listed.contains).map(\.rawValue)
            for method in HTTPMethod.allCases.map(\.rawValue) + ["PATCH"] where !allow.contains(method) {
                let response = try client.send(method, target, body: Array("{}".utf8))
                let text = String(decoding: response.body, as: UTF8.self)
                #expect(response.status == 405 && response.headers["Allow"] == allow.joined(separator: ", "), "\(method) \(target): \(response.status) \(text)")
                #expect(text.contains("\(method) is not allowed on \(target); use \(allow.joined(separator: " or "))"), "\(text)")
            }
        }
    }

    @Test("an unknown path is 404 naming it; under /v1/models a bad model name is 400 before anything else")
    func unknownPaths() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        for (method, target) in [("GET", "/v1"), ("GET", "/v1/nothing"), ("POST", "/v1/models/digits/nothing"), ("GET", "/v1/models/digits/versions"),
                                 ("DELETE", "/v1/status/extra"), ("GET", "/v1/models/digits/rollout/pause/now")] {
            let (status, object) = try client.json(method, target)
            #expect(status == 404 && object["error"] as? String == "no endpoint \(method) \(target); see docs/API.md", "\(method) \(target): \(object)")
        }
        for (method, target) in [("GET", "/v1/models/bad%20name"), ("DELETE", "/v1/models/bad%20name"), ("GET", "/v1/models/bad%20name/nothing"),
                                 ("POST", "/v1/models/.hidden/promote")] {
            let (status, object) = try client.json(method, target, "{}")
            let name = target.split(separator: "/")[2].replacingOccurrences(of: "%20", with: " ")
            #expect(status == 400 && object["error"] as? String == "'\(name)' is not a valid model name", "\(method) \(target): \(object)")
        }
    }

    @Test("a name with an escaped slash reaches the daemon as one path parameter, and is judged by name")
    func escapedParameters() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let alias = ControlEndpoints.setAlias.request([.model: "digits", .alias: "a/b"], body: AliasRequest(version: 2))
        #expect(alias.target == "/v1/models/digits/aliases/a%2Fb")
        let (status, object) = try client.json(alias.method.rawValue, alias.target, String(decoding: alias.body!, as: UTF8.self))
        #expect(status == 400 && (object["error"] as? String ?? "").hasPrefix("alias 'a/b' is not valid"), "\(object)")
        let model = ControlEndpoints.model.request([.model: "dig its"])
        let (modelStatus, modelObject) = try client.json(model.method.rawValue, model.target)
        #expect(modelStatus == 400 && modelObject["error"] as? String == "'dig its' is not a valid model name")
    }

    @Test("every state the daemon stores has a name the wire knows, so registryctl never shows a daemon state as unrecognized")
    func daemonStatesHaveWireNames() {
        for state in VersionState.allCases {
            #expect(VersionStateName.known.contains(VersionStateName(rawValue: state.rawValue)), "\(state)")
        }
        let rollouts: [RolloutRecord.State] = [.running, .paused, .promoted, .rolledBack, .aborted]
        for state in rollouts {
            let name = RolloutStateName(rawValue: state.rawValue)
            #expect(RolloutStateName.known.contains(name) && name.isActive == state.isActive, "\(state)")
        }
    }
}
