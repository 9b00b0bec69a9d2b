import Foundation
import Testing
import Wire

@Suite("control endpoint table")
struct ControlEndpointsTests {
    let table = ControlEndpoints.table

    @Test("the table holds every endpoint name once")
    func everyNameOnce() {
        #expect(table.endpoints.map(\.name).sorted { $0.rawValue < $1.rawValue } == ControlEndpoints.Name.allCases.sorted { $0.rawValue < $1.rawValue })
    }

    /// Parameters that render each of a template's parameters.
    static func sample(_ path: PathTemplate) -> PathParameters {
        var parameters: PathParameters = [:]
        for name in path.parameters { parameters[name] = name == .version ? "3" : "p-\(name.rawValue)" }
        return parameters
    }

    @Test("each endpoint's own path, with its own method, finds that endpoint and gives back its parameters")
    func eachEndpointFindsItself() {
        for endpoint in table.endpoints {
            let parameters = Self.sample(endpoint.path)
            let target = endpoint.path.render(parameters)
            #expect(table.match(method: endpoint.method.rawValue, target: target) == .found(endpoint, parameters), "\(endpoint)")
        }
    }

    @Test("a path that exists with other methods is 'method not allowed', listing exactly the table's methods for it, reads first")
    func methodNotAllowed() {
        for endpoint in table.endpoints {
            let target = endpoint.path.render(Self.sample(endpoint.path))
            let declared = Set(table.endpoints.filter { $0.path == endpoint.path }.map(\.method))
            #expect(table.allowedMethods(target: target) == declared.sorted(), "\(endpoint)")
            for method in HTTPMethod.allCases where !declared.contains(method) {
                #expect(table.match(method: method.rawValue, target: target) == .methodNotAllowed(declared.sorted(), Self.sample(endpoint.path)), "\(method) \(target)")
            }
            #expect(table.match(method: "PATCH", target: target) == .methodNotAllowed(declared.sorted(), Self.sample(endpoint.path)))
        }
        #expect(table.allowedMethods(target: "/v1/models/digits/shadow") == [.get, .put, .delete])
        #expect(table.allowedMethods(target: "/v1/models/digits/rollout") == [.get, .post])
        #expect(table.allowedMethods(target: "/v1/models/digits/split") == [.put, .delete])
    }

    @Test("a path no endpoint has is not found, whatever the method")
    func notFound() {
        for target in ["/v1", "/v1/nothing", "/v1/models/digits/nothing", "/v1/models/digits/versions", "/v1/status/extra", "/v2/models/digits", "/"] {
            for method in HTTPMethod.allCases { #expect(table.match(method: method.rawValue, target: target) == .notFound, "\(method) \(target)") }
            #expect(table.allowedMethods(target: target).isEmpty)
        }
    }

    @Test("a request built from an endpoint has its method, the escaped path and query, and the body its type encodes")
    func requests() throws {
        let promote = ControlEndpoints.promote.request([.model: "my model"], body: PromoteRequest(version: 2, reason: "better"))
        #expect(promote.method == .post && promote.target == "/v1/models/my%20model/promote")
        #expect(try APICoding.decode(PromoteRequest.self, from: promote.body ?? []) == PromoteRequest(version: 2, reason: "better"))

        let events = ControlEndpoints.events.request(query: [("model", "digits"), ("since", nil), ("action", "promote,rollback")])
        #expect(events == APIRequest(method: .get, target: "/v1/events?model=digits&action=promote%2Crollback", body: nil), "a nil value is left out; a GET has no body")
        #expect(ControlEndpoints.rescan.request(query: [("wait", "false")], body: EmptyBody()).body == Array("{}".utf8))
        let alias = ControlEndpoints.setAlias.request([.model: "digits", .alias: "a/b"], body: AliasRequest(version: 1))
        #expect(alias.target == "/v1/models/digits/aliases/a%2Fb")
        #expect(ControlEndpoints.setAlias.path.match(alias.target) == [.model: "digits", .alias: "a/b"])
    }

    @Test("a request body's accepted keys are its coding keys; the bodies the daemon does not read accept anything")
    func bodyKeys() throws {
        #expect(PromoteRequest.keys == ["version", "force", "reason"])
        #expect(RollbackRequest.keys == ["to", "force", "reason"])
        #expect(AliasRequest.keys == ["version", "reason"])
        #expect(SplitRequest.keys == ["weights", "reason"])
        #expect(ShadowRequest.keys == ["version", "percent", "reason"])
        #expect(ReasonRequest.keys == ["reason"])
        #expect(RolloutStartRequest.keys == ["version", "steps", "interval_seconds", "max_error_rate", "max_latency_ratio", "min_requests", "reason"])
        #expect(performing: { try PromoteRequest.decode(Array(#"{"version": 2, "froce": true}"#.utf8)) }, throws: { error in
            (error as? APIDecodingError)?.message == "unknown key 'froce'; expected one of: force, reason, version"
        })
        #expect(try EmptyBody.decode(Array("not json".utf8)) == EmptyBody())
        #expect(try NoBody.decode(Array("{\"x\":1}".utf8)) == NoBody())
        #expect(NoBody().encoded == nil)
    }
}
