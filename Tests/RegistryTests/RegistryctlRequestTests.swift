import Foundation
import Glibc
import Synchronization
import Testing
import Wire
@testable import Registry

/// registryctl, the real executable, talking to a recording server in front of a real daemon's
/// control API: every request it sends must be an endpoint of the table.
@Suite("registryctl requests", .serialized)
struct RegistryctlRequestTests {
    /// Each request's method and target, in arrival order.
    final class RequestLog: Sendable {
        let entries = Mutex<[(method: String, target: String)]>([])
    }

    /// A control API on a socket of its own that records each request.
    final class RecordingServer {
        let socket: String
        let server: HTTPServer
        let requests = RequestLog()

        init(registry: TestRegistry) throws {
            socket = "\(registry.temp.path)/rec.sock"
            let daemon = registry.daemon!
            let control = ControlAPI(lifecycle: daemon.lifecycle, catalog: daemon.catalog, config: registry.config, startedAt: 0)
            let requests = self.requests
            server = try HTTPServer(configuration: HTTPServer.Configuration(threads: 2), log: Log(level: .error, sink: { _ in })) { request, peer in
                requests.entries.withLock { $0.append((request.method, request.target)) }
                return control.handle(request, actor: peer.description)
            }
            try server.listenUnix(path: socket, mode: 0o600, group: nil)
            server.start()
        }

        deinit { server.stop(deadline: 1) }
    }

    @Test("every request a registryctl command sends matches an endpoint of the table, with only the query names it reads; the commands reach every endpoint but stats")
    func requestsMatchTheTable() throws {
        let registry = try TestRegistry.digitsOneAndTwo()
        let recorder = try RecordingServer(registry: registry)
        let imported = "\(registry.temp.path)/new.onnx"
        try modelBytes("digits_logreg.onnx", variant: 7).write(to: URL(fileURLWithPath: imported))

        // (arguments, expected exit status)
        let commands: [([String], Int32)] = [
            (["status"], 0), (["list"], 0), (["versions", "digits"], 0), (["show", "digits"], 0), (["show", "digits@2"], 0),
            (["promote", "digits", "2", "--reason", "r"], 0), (["rollback", "digits"], 0),
            (["alias", "digits", "stable", "2"], 0), (["alias", "digits", "stable", "--remove"], 0),
            (["split", "digits", "1=90", "2=10"], 0), (["split", "digits", "--clear"], 0),
            (["shadow", "digits", "2", "--percent", "10"], 0), (["shadow", "digits"], 0), (["shadow", "digits", "--off"], 0),
            (["rollout", "start", "digits", "2", "--steps", "5,100"], 0), (["rollout", "status", "digits"], 0),
            (["rollout", "pause", "digits"], 0), (["rollout", "resume", "digits"], 0), (["rollout", "abort", "digits"], 0),
            (["verify"], 0), (["verify", "digits"], 0), (["rescan"], 0), (["rescan", "--no-wait"], 0), (["reload"], 1),
            (["history"], 0), (["history", "digits", "--action", "promote,rollback", "--since", "0", "--until", "9999999999", "--limit", "5"], 0),
            (["history", "--verify"], 0), (["history", "digits", "--at", "2026-11-23T14:03:00Z"], 0),
            (["import", "digits", imported, "--wait"], 0),
            // A name that needs escaping reaches the daemon as one segment, and is refused by name.
            (["versions", "dig its"], 1), (["alias", "digits", "a/b", "1"], 1),
        ]
        for (arguments, expected) in commands {
            let before = recorder.requests.entries.withLock { $0.count }
            let result = try runSeparately([RegistryctlTests.binary, "--socket", recorder.socket] + arguments, environment: ["PATH": "/usr/bin:/bin"])
            #expect(result.status == expected, "\(arguments): \(result.stderr)")
            #expect(recorder.requests.entries.withLock { $0.count } > before, "\(arguments) sent no request")
        }
        let invalid = try runSeparately([RegistryctlTests.binary, "--socket", recorder.socket, "versions", "dig its"])
        #expect(invalid.stderr == "Error: 'dig its' is not a valid model name\n")
        let slash = try runSeparately([RegistryctlTests.binary, "--socket", recorder.socket, "alias", "digits", "a/b", "1"])
        #expect(slash.stderr.hasPrefix("Error: alias 'a/b' is not valid"), "\(slash.stderr)")

        var reached: Set<ControlEndpoints.Name> = []
        for (method, target) in recorder.requests.entries.withLock({ $0 }) {
            guard case .found(let endpoint, _) = ControlEndpoints.table.match(method: method, target: target) else {
                Issue.record("registryctl sent \(method) \(target), which is no endpoint of the table")
                continue
            }
            reached.insert(endpoint.name)
            let names = HTTPRequest(method: method, target: target).query.map(\.name)
            #expect(names.allSatisfy(endpoint.query.contains), "\(method) \(target): \(endpoint) reads only \(endpoint.query)")
        }
        #expect(reached == Set(ControlEndpoints.Name.allCases).subtracting([.stats]), "not reached: \(Set(ControlEndpoints.Name.allCases).subtracting(reached))")
    }
}
