import Foundation
import Glibc
import Synchronization
import Testing
import Wire
@testable import Registry

/// The control API over the real control socket of an in-process daemon.
@Suite("control API", .serialized)
struct ControlAPITests {
    /// A registry with digits versions 1 and 2 (2 is the MLP), version 1 production.
    func twoVersions(policy: ModelPolicy = ModelPolicy(onNewVersion: .ready, keepPrevious: 2, requireSignature: false),
                     watcher: (any DirectoryWatcher)? = InotifyWatcher()) throws -> TestRegistry {
        let registry = TestRegistry(policies: ["digits": policy])
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
        try registry.start(watcher: watcher)
        #expect(registry.waitForState("digits", 2, [.ready]) != nil)
        return registry
    }

    @Test("promote switches production, rollback swaps back, both are events with the peer's uid and pid and the reason")
    func promoteAndRollback() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let (status, promoted) = try client.json("POST", "/v1/models/digits/promote", #"{"version": 2, "reason": "mlp is better"}"#)
        #expect(status == 200, "\(promoted)")
        #expect(promoted["version"] as? Int == 2 && promoted["previous"] as? Int == 1)
        #expect(try registry.daemon!.router.resolve(model: "digits").0.version == 2)
        let (rolledStatus, rolled) = try client.json("POST", "/v1/models/digits/rollback", #"{"reason": "regression"}"#)
        #expect(rolledStatus == 200, "\(rolled)")
        #expect(rolled["version"] as? Int == 1 && rolled["loaded_first"] as? Bool == false)
        #expect(try registry.daemon!.router.resolve(model: "digits").0.version == 1)

        let events = try registry.daemon!.catalog.events(model: "digits", actions: ["promote", "rollback"])
        let manual = events.filter { $0.draft.actor != EventDraft.daemon }
        #expect(manual.map(\.draft.action) == ["promote", "rollback"])
        #expect(manual.allSatisfy { $0.draft.actor.contains("uid=\(getuid())") && $0.draft.actor.contains("pid=\(getpid())") }, "\(manual.map(\.draft.actor))")
        #expect(manual.map(\.draft.reason) == ["mlp is better", "regression"])
        #expect(manual[0].draft.before == "1" && manual[0].draft.after == "2")
    }

    @Test("a version's updated_at in the listing follows its state changes, as the catalog stamped them")
    func updatedAt() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        func listed(_ version: Int) throws -> (state: String?, updatedAt: Double?) {
            let (_, model) = try client.json("GET", "/v1/models/digits")
            let row = (model["versions"] as? [[String: Any]])?.first { $0["version"] as? Int == version }
            return (row?["state"] as? String, row?["updated_at"] as? Double)
        }
        func stored(_ version: Int) throws -> Double? { try registry.daemon!.catalog.version(model: "digits", version: version)?.updatedAt }
        // Within 1 µs: Foundation's JSONSerialization on Linux parses about half of the doubles
        // of this magnitude 1-2 units in the last place off (measured: 9,461 of 20,000 values
        // near 1.8e9 written in their shortest form), about 2e-7 s here. The daemon writes them
        // exactly.
        func same(_ a: Double?, _ b: Double?) -> Bool { a != nil && b != nil && abs(a! - b!) < 1e-6 }
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        let before = try listed(2)
        let storedBefore = try stored(2)
        #expect(before.state == "ready" && same(before.updatedAt, storedBefore), "listed \(String(describing: before.updatedAt)), stored \(String(describing: storedBefore))")
        Thread.sleep(forTimeInterval: 0.02)
        #expect(try client.json("POST", "/v1/models/digits/promote", #"{"version": 2}"#).0 == 200)
        let promoted = try listed(2)
        let storedPromoted = try stored(2)
        #expect(promoted.state == "live")
        #expect(same(promoted.updatedAt, storedPromoted), "the listing shows another updated_at than the catalog row")
        #expect((promoted.updatedAt ?? 0) > (before.updatedAt ?? .infinity), "updated_at did not move with the promotion")
        // Version 1 left production in the same command: its row moved too.
        let former = try listed(1)
        let storedFormer = try stored(1)
        #expect(former.state == "ready" && same(former.updatedAt, storedFormer) && same(former.updatedAt, promoted.updatedAt))
    }

    @Test("promote refuses: unknown model 404, unknown version 404, not ready 409, incompatible inputs 409 unless forced (recorded), bad body 400")
    func promoteErrors() throws {
        let registry = try twoVersions()
        try dropAtomically(root: registry.root, model: "digits", version: 3, bytes: modelBytes("identity_float.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 4, bytes: modelBytes("invalid.onnx"))
        #expect(registry.waitForState("digits", 3, [.ready]) != nil)
        #expect(registry.waitForState("digits", 4, [.failed]) != nil)
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        func expectError(_ body: String, model: String = "digits", _ status: Int, _ fragment: String) throws {
            let (got, object) = try client.json("POST", "/v1/models/\(model)/promote", body)
            #expect(got == status, "\(body): \(object)")
            #expect((object["error"] as? String)?.contains(fragment) == true, "\(object)")
        }
        try expectError(#"{"version": 2}"#, model: "nope", 404, "model 'nope' not found")
        try expectError(#"{"version": 9}"#, 404, "model 'digits' version 9 not found")
        try expectError(#"{"version": 4}"#, 409, "version 4 is failed")
        try expectError(#"{"version": 3}"#, 409, "not compatible with production version 1: input 'input' is missing")
        try expectError(#"{"version": "2"}"#, 400, "'version' must be an integer")
        try expectError(#"{"version": 2, "froce": true}"#, 400, "unknown key 'froce'")
        try expectError(#"{"version": 2"#, 400, "not valid JSON")
        try expectError(#"{"version": 1}"#, 409, "already production")
        let (forced, object) = try client.json("POST", "/v1/models/digits/promote", #"{"version": 3, "force": true, "reason": "test"}"#)
        #expect(forced == 200 && object["forced"] as? Bool == true)
        let event = try registry.daemon!.catalog.events(model: "digits", actions: ["promote"]).last!
        #expect(event.draft.reason.hasPrefix("FORCED despite incompatible signature (input 'input' is missing)"), "\(event.draft.reason)")
    }

    @Test("rollback to a version that was unloaded loads it first and says so")
    func rollbackReloads() throws {
        let registry = try twoVersions(policy: ModelPolicy(onNewVersion: .ready, keepPrevious: 0, requireSignature: false))
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        #expect(try client.json("POST", "/v1/models/digits/promote", #"{"version": 2}"#).0 == 200)
        // keep_previous 0: version 1 was unloaded.
        #expect(registry.record("digits", 1)?.state == .retired)
        let (status, object) = try client.json("POST", "/v1/models/digits/rollback", "{}")
        #expect(status == 200, "\(object)")
        #expect(object["loaded_first"] as? Bool == true)
        #expect((object["message"] as? String)?.contains("was not loaded and was loaded first") == true)
        #expect(try registry.daemon!.router.resolve(model: "digits").0.version == 1)
    }

    @Test("aliases: set, list, remove; production cannot be set or removed as an alias")
    func aliases() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        #expect(try client.json("PUT", "/v1/models/digits/aliases/stable", #"{"version": 2, "reason": "qa passed"}"#).0 == 200)
        let (_, model) = try client.json("GET", "/v1/models/digits")
        #expect((model["aliases"] as? [String: Int])?["stable"] == 2)
        #expect(try client.json("DELETE", "/v1/models/digits/aliases/stable", #"{"reason": "done"}"#).0 == 200)
        #expect(try client.json("DELETE", "/v1/models/digits/aliases/stable", "{}").0 == 404)
        #expect(try client.json("PUT", "/v1/models/digits/aliases/production", #"{"version": 2}"#).0 == 409)
        #expect(try client.json("DELETE", "/v1/models/digits/aliases/production", "{}").0 == 409)
        #expect(try client.json("PUT", "/v1/models/digits/aliases/Bad!", #"{"version": 2}"#).0 == 400)
    }

    @Test("the candidate alias marks a ready version candidate and back; on production it changes no state")
    func candidateAlias() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        #expect(try client.json("PUT", "/v1/models/digits/aliases/candidate", #"{"version": 1}"#).0 == 200)
        #expect(registry.record("digits", 1)?.state == .live, "production stays live under the candidate alias")
        #expect(try client.json("PUT", "/v1/models/digits/aliases/candidate", #"{"version": 2}"#).0 == 200)
        #expect(registry.record("digits", 2)?.state == .candidate)
        #expect(registry.record("digits", 1)?.state == .live)
        #expect(try client.json("DELETE", "/v1/models/digits/aliases/candidate", "{}").0 == 200)
        #expect(registry.record("digits", 2)?.state == .ready, "removing the alias makes it plain ready again")
        #expect(try Catalog.peekState(registry.database, "digits", 2) == "ready", "and the catalog says so")
    }

    @Test("history --verify: an edited row and a deleted row are each detected")
    func tamperEvidence() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        #expect(try client.json("POST", "/v1/models/digits/promote", #"{"version": 2}"#).0 == 200)
        #expect(try client.json("POST", "/v1/models/digits/rollback", "{}").0 == 200)
        var (status, report) = try client.json("GET", "/v1/events/verify")
        #expect(status == 200 && report["intact"] as? Bool == true)
        // Tamper with a second connection, as someone with write access to the file would.
        let tamper = try Database(path: registry.database)
        try tamper.execute("DROP TRIGGER events_are_append_only_update")
        try tamper.execute("DROP TRIGGER events_are_append_only_delete")
        try tamper.execute("UPDATE events SET reason = 'nothing to see' WHERE action = 'rollback'")
        (status, report) = try client.json("GET", "/v1/events/verify")
        #expect(report["intact"] as? Bool == false)
        #expect((report["problems"] as? [String])?.contains { $0.contains("was altered") } == true, "\(report)")
        try tamper.execute("UPDATE events SET reason = '' WHERE action = 'rollback'")
        (status, report) = try client.json("GET", "/v1/events/verify")
        #expect(report["intact"] as? Bool == true, "restoring the field restores the chain: \(report)")
        try tamper.execute("DELETE FROM events WHERE id = 3")
        (status, report) = try client.json("GET", "/v1/events/verify")
        #expect(report["intact"] as? Bool == false)
        #expect((report["problems"] as? [String])?.contains { $0.contains("missing (deleted)") } == true, "\(report)")
        tamper.close()
    }

    @Test("served-at answers what served at past times across three promotions")
    func servedAt() throws {
        let registry = try twoVersions()
        try dropAtomically(root: registry.root, model: "digits", version: 3, bytes: modelBytes("digits_logreg.onnx", variant: 3))
        #expect(registry.waitForState("digits", 3, [.ready]) != nil)
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        var marks: [(Double, Int)] = [(Date().timeIntervalSince1970, 1)]
        for version in [2, 3, 1] {
            Thread.sleep(forTimeInterval: 0.05)
            #expect(try client.json("POST", "/v1/models/digits/promote", #"{"version": \#(version)}"#).0 == 200)
            Thread.sleep(forTimeInterval: 0.05)
            marks.append((Date().timeIntervalSince1970, version))
        }
        for (at, expected) in marks {
            let (status, object) = try client.json("GET", "/v1/models/digits/served-at?at=\(at)")
            #expect(status == 200 && object["version"] as? Int == expected, "at \(at): \(object)")
        }
        let iso = APICoding.time(marks[1].0)
        let (_, byISO) = try client.json("GET", "/v1/models/digits/served-at?at=\(iso)")
        #expect(byISO["version"] as? Int == 2, "\(byISO)")
        #expect(try client.json("GET", "/v1/models/digits/served-at?at=yesterday").0 == 400)
        let before = try client.json("GET", "/v1/models/digits/served-at?at=1000").1
        #expect(before["version"] == nil || before["version"] is NSNull)
    }

    @Test("unknown paths are 404 naming the endpoint; a known path with another method is 405 with Allow; a bad version in a path is 400")
    func unknownPaths() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let (status, object) = try client.json("GET", "/v1/nothing")
        #expect(status == 404 && object["error"] as? String == "no endpoint GET /v1/nothing; see docs/API.md")
        #expect(try client.json("GET", "/v1/models/digits/nothing").0 == 404)
        #expect(try client.json("GET", "/v1/models/digits/versions/x").0 == 400)
        for (method, path, allow) in [("POST", "/v1/models/digits/shadow", "GET, PUT, DELETE"), ("GET", "/v1/models/digits/promote", "POST"),
                                      ("DELETE", "/v1/status", "GET"), ("GET", "/v1/reload", "POST"), ("POST", "/v1/models/digits/versions/1", "GET"),
                                      ("GET", "/v1/models/digits/aliases/stable", "PUT, DELETE"), ("PUT", "/v1/events/verify", "GET")] {
            let response = try client.send(method, path, body: method == "GET" ? nil : Array("{}".utf8))
            let text = String(decoding: response.body, as: UTF8.self)
            #expect(response.status == 405 && response.headers["Allow"] == allow, "\(method) \(path): \(response.status) \(text)")
            #expect(text.contains("\(method) is not allowed on \(path)"), "\(text)")
        }
    }

    @Test("re-verification finds changed bytes, quarantines the version and keeps production serving")
    func reverify() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        var (status, report) = try client.json("POST", "/v1/verify", "{}")
        #expect(status == 200 && report["failed"] as? Int == 0 && report["checked"] as? Int == 2)
        // Overwrite version 2 in place (what an operator must never do).
        let path = "\(registry.root)/digits/2/model.onnx"
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data([0xC0, 0x3E, 0x07]))
        handle.closeFile()
        (status, report) = try client.json("POST", "/v1/verify?model=digits", "{}")
        #expect(report["failed"] as? Int == 1, "\(report)")
        #expect(registry.record("digits", 2)?.state == .quarantined)
        #expect(try registry.daemon!.router.resolve(model: "digits").0.version == 1)
    }

    @Test("re-verification never takes production down: changed bytes under production are quarantined (once) while memory keeps serving; a vanished file is marked missing and keeps serving")
    func reverifyProduction() throws {
        // No watcher: only `verify` and the explicit rescan below look at the files, so that a
        // scan cannot find the changes first.
        let registry = try twoVersions(watcher: DeafWatcher())
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let (features, expected, _) = try digitsRow(0)
        let body = Array(digitsBody(features).utf8)
        let handle = FileHandle(forWritingAtPath: "\(registry.root)/digits/1/model.onnx")!
        handle.seekToEndOfFile()
        handle.write(Data([0xC0, 0x3E, 0x07]))
        handle.closeFile()
        var (status, report) = try client.json("POST", "/v1/verify?model=digits", "{}")
        #expect(status == 200 && report["failed"] as? Int == 1, "\(report)")
        let item = (report["items"] as? [[String: Any]])?.first { $0["version"] as? Int == 1 }
        #expect((item?["problem"] as? String)?.contains("production keeps serving the admitted bytes from memory") == true, "\(report)")
        #expect(registry.record("digits", 1)?.state == .live)
        #expect(try registry.daemon!.catalog.quarantineCount(model: "digits", version: 1) == 1)
        var response = try client.send("POST", "/v2/models/digits/infer", body: body)
        #expect(response.status == 200 && label(of: response) == expected && servedVersion(of: response) == 1)
        // The next scan, and the next verify, find the same changed file: reported, not
        // recorded again.
        #expect(try client.send("POST", "/v1/rescan").status == 200)
        (status, report) = try client.json("POST", "/v1/verify?model=digits", "{}")
        #expect(status == 200 && report["failed"] as? Int == 1, "\(report)")
        #expect(try registry.daemon!.catalog.quarantineCount(model: "digits", version: 1) == 1)
        #expect(registry.record("digits", 1)?.state == .live)

        // Version 2's file vanishes: missing, and its loaded session still answers.
        #expect(rename("\(registry.root)/digits/2/model.onnx", "\(registry.root)/digits/.gone.onnx") == 0)
        (status, report) = try client.json("POST", "/v1/verify?model=digits", "{}")
        #expect(status == 200 && report["failed"] as? Int == 2, "\(report)")
        #expect(registry.record("digits", 2)?.state == .missing)
        #expect(registry.record("digits", 2)?.reason.contains("still serving from memory") == true)
        response = try client.send("POST", "/v2/models/digits/versions/2/infer", body: body)
        #expect(response.status == 200 && servedVersion(of: response) == 2)
        response = try client.send("POST", "/v2/models/digits/infer", body: body)
        #expect(response.status == 200 && servedVersion(of: response) == 1)
    }

    @Test("GET /v1/events gives the newest `limit` matching events, oldest first")
    func eventsNewest() throws {
        let registry = try twoVersions()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        for i in 0..<6 {
            #expect(try client.json("POST", "/v1/models/digits/promote", #"{"version": \#(i % 2 == 0 ? 2 : 1), "reason": "turn \#(i)"}"#).0 == 200)
        }
        func ids(_ query: String) throws -> [Int] {
            let response = try client.send("GET", "/v1/events\(query)")
            #expect(response.status == 200)
            let list = (try JSONSerialization.jsonObject(with: Data(response.body))) as? [[String: Any]] ?? []
            return list.compactMap { $0["id"] as? Int }
        }
        let all = try ids("?limit=100000")
        #expect(all.count > 8 && all == all.sorted())
        #expect(try ids("?limit=3") == Array(all.suffix(3)))
        let promotions = try client.send("GET", "/v1/events?model=digits&action=promote&limit=2")
        let list = (try JSONSerialization.jsonObject(with: Data(promotions.body))) as? [[String: Any]] ?? []
        #expect(list.map { $0["reason"] as? String } == ["turn 4", "turn 5"], "\(list)")
    }

    @Test("a second daemon on the same socket exits with a clear error; a stale socket file is replaced")
    func socketOwnership() throws {
        let registry = try twoVersions()
        let other = TestRegistry()
        other.config.controlSocket = registry.config.controlSocket
        do {
            try other.start()
            Issue.record("a second daemon started on a socket already served")
        } catch {
            #expect("\(error)".contains("another registryd is already listening on control socket"), "\(error)")
        }
        registry.stop()
        // Leave a stale socket file behind, as a crash would.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(registry.config.controlSocket.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(fd)
        #expect(FileManager.default.fileExists(atPath: registry.config.controlSocket))
        try other.start()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        #expect(try client.json("GET", "/v1/status").0 == 200)
        other.stop()
    }

    @Test("concurrent commands on one model are serialised: all recorded, and the final state is the last recorded one")
    func concurrentCommands() throws {
        let registry = try twoVersions()
        let socket = registry.config.controlSocket
        let group = DispatchGroup()
        let statuses = Mutex<[Int]>([])
        for index in 0..<16 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                guard let client = try? HTTPTestClient(unixPath: socket) else { return }
                let body = index % 2 == 0 ? #"{"version": 2, "reason": "r\#(index)"}"# : #"{"to": 1, "reason": "r\#(index)"}"#
                let path = index % 2 == 0 ? "/v1/models/digits/promote" : "/v1/models/digits/rollback"
                let status = (try? client.json("POST", path, body).0) ?? -1
                statuses.withLock { $0.append(status) }
            }
        }
        group.wait()
        let all = statuses.withLock { $0 }
        #expect(all.count == 16 && all.allSatisfy { $0 == 200 || $0 == 409 }, "\(all)")
        let recorded = try registry.daemon!.catalog.events(model: "digits", actions: ["promote", "rollback"]).filter { $0.draft.actor != EventDraft.daemon }
        #expect(recorded.count == all.filter { $0 == 200 }.count, "every accepted command is recorded")
        let production = try registry.daemon!.router.resolve(model: "digits").0.version
        #expect(recorded.last.flatMap { Int($0.draft.after ?? "") } == production)
        #expect(try registry.daemon!.catalog.aliases(model: "digits")["production"] == production)
        #expect(try registry.daemon!.catalog.verifyChain().isIntact)
    }

    @Test("the control socket gets the configured mode")
    func socketMode() throws {
        let registry = TestRegistry()
        registry.config.controlSocketMode = 0o600
        try registry.start()
        var info = stat()
        #expect(stat(registry.config.controlSocket, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
    }
}
