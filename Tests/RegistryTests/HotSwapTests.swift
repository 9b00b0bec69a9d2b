import Foundation
import Glibc
import Testing
import Registry
import Runtime

@Suite("Hot reload", .serialized)
struct HotSwapTests {
    /// A running registry whose digits version 1 is live.
    func liveDigits() throws -> TestRegistry {
        let registry = TestRegistry()
        try registry.makeModelDirectory("digits")
        try registry.start()
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        return registry
    }

    @Test("8 threads predict while 20 new versions arrive and go live: zero failures, every answer from a version that was live when routed")
    func swapsUnderLoad() throws {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .live, keepPrevious: 1, requireSignature: false)])
        try registry.makeModelDirectory("digits")
        try registry.start()
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx", variant: 1))
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        let daemon = registry.daemon!
        let (row, expected, _) = try digitsRow()
        let input = try Tensor(shape: [1, 64], scalars: row)

        let stop = Atomic<Bool>(false)
        let results = Mutex<(answers: Int, failures: [String], regressions: Int, versions: Set<Int>)>((0, [], 0, []))
        let done = DispatchGroup()
        for _ in 0..<8 {
            done.enter()
            Thread {
                var last = 0
                while !stop.load(ordering: .relaxed) {
                    do {
                        let answer = try daemon.predict(model: "digits", inputs: ["input": input])
                        let label = try answer.outputs["label"]!.scalars(as: Int64.self)
                        let version = answer.version.version
                        results.withLock {
                            $0.answers += 1
                            $0.versions.insert(version)
                            if label != [expected] { $0.failures.append("wrong label \(label) from version \(version)") }
                            // Versions go live in increasing order: a thread never sees an older one
                            // after a newer one unless it was routed to something no longer live.
                            if version < last { $0.regressions += 1 }
                        }
                        last = version
                    } catch {
                        results.withLock { $0.failures.append("\(error)") }
                    }
                }
                done.leave()
            }.start()
        }
        var swapTimes: [Double] = []
        for version in 2...21 {
            let started = Date()
            try dropAtomically(root: registry.root, model: "digits", version: version, bytes: modelBytes("digits_logreg.onnx", variant: version))
            #expect(registry.waitForState("digits", version, [.live]) != nil, "version \(version)")
            swapTimes.append(Date().timeIntervalSince(started))
        }
        Thread.sleep(forTimeInterval: 0.1)
        stop.store(true, ordering: .relaxed)
        done.wait()
        let final = results.withLock { $0 }
        let sorted = swapTimes.sorted()
        print("hot reload: \(final.answers) answers during 20 swaps, \(final.failures.count) failures, versions seen \(final.versions.count); rename-to-live median \(String(format: "%.3f", sorted[10])) s, max \(String(format: "%.3f", sorted.last!)) s")
        #expect(final.failures.isEmpty, "\(final.failures.prefix(5))")
        #expect(final.regressions == 0)
        #expect(final.answers > 0)
        // Retention: production and one previous stay loaded; the rest are retired.
        let status = try #require(daemon.lifecycle.status().first)
        #expect(status.loadedVersions == [20, 21])
        #expect(status.aliases["production"] == 21)
        #expect(status.versions.filter { $0.state == .retired }.count == 19)
    }

    @Test("a missed inotify event is healed by the periodic rescan")
    func missedEventsHealed() throws {
        let registry = TestRegistry(rescan: 0.2)
        try registry.makeModelDirectory("digits")
        try registry.start(watcher: DeafWatcher())
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        // No watcher event arrives; only the rescan (and the settle window) can admit it.
        #expect(registry.waitForState("digits", 1, [.live], timeout: 10) != nil)
    }

    @Test("an inotify overflow triggers a full rescan")
    func overflowRescans() throws {
        let registry = TestRegistry(settle: 0.05, rescan: 3600)
        try registry.makeModelDirectory("digits")
        let watcher = ManualWatcher()
        try registry.start(watcher: watcher)
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        Thread.sleep(forTimeInterval: 0.3)
        #expect(registry.record("digits", 1) == nil, "nothing should notice without an event")
        watcher.send(.overflow)
        #expect(registry.waitForState("digits", 1, [.live], timeout: 10) != nil)
        #expect(registry.lines.all.contains { $0.contains("inotify queue overflowed") })
    }

    @Test("a live version whose files disappear keeps serving from memory and is marked missing")
    func deletedWhileLive() throws {
        let registry = try liveDigits()
        try FileManager.default.removeItem(atPath: "\(registry.root)/digits/1")
        #expect(registry.waitForState("digits", 1, [.missing]) != nil)
        #expect(registry.record("digits", 1)?.reason.contains("still serving from memory") == true)
        let (row, expected, _) = try digitsRow()
        let answer = try registry.daemon!.predict(model: "digits", inputs: ["input": Tensor(shape: [1, 64], scalars: row)])
        #expect(try answer.outputs["label"]?.scalars(as: Int64.self) == [expected])
    }

    @Test("production missing when the daemon starts is loaded again, and serves, once its file is back with the admitted bytes")
    func productionBackAfterStart() throws {
        let registry = try liveDigits()
        registry.stop()
        // The volume holding the model is not mounted yet when the daemon starts.
        #expect(rename("\(registry.root)/digits/1", "\(registry.root)/digits/.away-1") == 0)
        try registry.start()
        #expect(registry.record("digits", 1)?.state == .missing)
        #expect(throws: RegistryError.self) { try registry.daemon!.router.resolve(model: "digits") }
        #expect(rename("\(registry.root)/digits/.away-1", "\(registry.root)/digits/1") == 0)
        #expect(registry.waitForState("digits", 1, [.live]) != nil, "\(String(describing: registry.record("digits", 1)))")
        #expect(registry.record("digits", 1)?.reason.contains("production loaded again") == true)
        let (row, expected, _) = try digitsRow()
        let answer = try registry.daemon!.predict(model: "digits", inputs: ["input": Tensor(shape: [1, 64], scalars: row)])
        #expect(answer.version.version == 1)
        #expect(try answer.outputs["label"]?.scalars(as: Int64.self) == [expected])
        let actions = try registry.daemon!.catalog.events(model: "digits").map(\.draft.action)
        #expect(actions.suffix(2) == ["missing", "reappear"], "\(actions)")
    }

    @Test("after the model root moves (a new mount point), a restart finds each version at its new place, re-hashes it there and serves it; different bytes there are quarantined")
    func modelRootMoved() throws {
        let registry = try liveDigits()
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
        #expect(registry.waitForState("digits", 2, [.ready]) != nil)
        registry.stop()
        let moved = "\(registry.root)-moved"
        #expect(rename(registry.root, moved) == 0)
        // Version 2 at the new place is not what was admitted.
        try modelBytes("digits_logreg.onnx", variant: 9).write(to: URL(fileURLWithPath: "\(moved)/digits/2/model.onnx"))
        registry.config.modelRoot = moved
        try registry.start()
        #expect(registry.record("digits", 1)?.state == .live)
        #expect(registry.record("digits", 1)?.path == "\(moved)/digits/1/model.onnx")
        #expect(registry.record("digits", 2)?.state == .quarantined)
        registry.daemon!.lifecycle.rescanNow()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        #expect(try registry.daemon!.catalog.quarantineCount(model: "digits", version: 2) == 1, "quarantined once, not again by the first scan")
        let (row, expected, _) = try digitsRow()
        let answer = try registry.daemon!.predict(model: "digits", inputs: ["input": Tensor(shape: [1, 64], scalars: row)])
        #expect(answer.version.version == 1)
        #expect(try answer.outputs["label"]?.scalars(as: Int64.self) == [expected])
        #expect(registry.lines.all.contains { $0.contains("model root moved") })
    }

    @Test("a restart brings back the same aliases and loaded versions")
    func restart() throws {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .candidate, keepPrevious: 1, requireSignature: false)])
        try registry.makeModelDirectory("digits")
        try registry.start()
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
        #expect(registry.waitForState("digits", 2, [.candidate]) != nil)
        let before = try #require(registry.daemon!.lifecycle.status().first)
        registry.stop()
        try registry.start()
        let after = try #require(registry.daemon!.lifecycle.status().first)
        #expect(after.aliases == before.aliases)
        #expect(after.aliases == ["production": 1, "candidate": 2])
        #expect(after.loadedVersions == before.loadedVersions)
        #expect(after.versions.map(\.state) == [.live, .candidate])
        #expect(try registry.daemon!.catalog.verifyChain().isIntact)
    }

    @Test("bytes changed while the daemon was down are caught at startup")
    func changedWhileDown() throws {
        let registry = try liveDigits()
        registry.stop()
        try modelBytes("digits_mlp.onnx").write(to: URL(fileURLWithPath: "\(registry.root)/digits/1/model.onnx"))
        try registry.start()
        #expect(registry.record("digits", 1)?.state == .quarantined)
        #expect(registry.record("digits", 1)?.reason.contains("changed while registryd was down") == true)
        #expect(throws: RegistryError.self) { try registry.daemon!.router.resolve(model: "digits") }
    }

    @Test("a second daemon on the same catalog is refused with a clear error")
    func oneDaemonPerCatalog() throws {
        let registry = TestRegistry()
        try registry.start()
        let error = #expect(throws: RegistryError.self) { try Daemon(config: registry.config, log: Log(sink: { _ in })) }
        #expect(error?.message.contains("another registryd is running") == true)
    }
}

import Synchronization
