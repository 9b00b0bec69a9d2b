import Foundation
import Runtime
import Wire
import Synchronization
import Testing
@testable import Registry

/// How shadow answers are compared: a pure function, checked on hand-made tensors.
@Suite("shadow comparison")
struct ShadowComparisonTests {
    @Test("labels agree row by row; scores by argmax, with their largest difference; regressions by max abs difference")
    func compare() throws {
        let a = try Tensor(shape: [4], scalars: [Int64(1), 2, 3, 4])
        let b = try Tensor(shape: [4], scalars: [Int64(1), 2, 9, 4])
        #expect(ShadowComparison.compare(primary: a, shadow: b) == .init(method: .top1, rows: 4, agreedRows: 3, maxAbsDiff: nil))

        let scores = try Tensor(shape: [2, 3], scalars: [Float(0.1), 0.7, 0.2, 0.5, 0.3, 0.2])
        let other = try Tensor(shape: [2, 3], scalars: [Float(0.2), 0.6, 0.2, 0.25, 0.5, 0.25])
        let outcome = try #require(ShadowComparison.compare(primary: scores, shadow: other))
        #expect(outcome.method == .top1 && outcome.rows == 2 && outcome.agreedRows == 1)
        #expect(abs(outcome.maxAbsDiff! - 0.25) < 1e-6)

        let x = try Tensor(shape: [3, 1], scalars: [1.0, 2.0, 3.0])
        let y = try Tensor(shape: [3, 1], scalars: [1.0, 2.5, 2.0])
        #expect(ShadowComparison.compare(primary: x, shadow: y) == .init(method: .maxAbsDiff, rows: 3, agreedRows: 0, maxAbsDiff: 1.0))

        let strings = try Tensor(shape: [2], strings: ["cat", "dog"])
        let strings2 = try Tensor(shape: [2], strings: ["cat", "cow"])
        #expect(ShadowComparison.compare(primary: strings, shadow: strings2)?.agreedRows == 1)

        // Different shapes or types cannot be compared: the caller counts a failure.
        #expect(ShadowComparison.compare(primary: a, shadow: try Tensor(shape: [2], scalars: [Int64(1), 2])) == nil)
        #expect(ShadowComparison.compare(primary: a, shadow: try Tensor(shape: [4], scalars: [Int32(1), 2, 3, 4])) == nil)
    }
}

/// Shadow traffic end to end: real daemon, real sessions, real socket.
@Suite("shadow traffic", .serialized)
struct ShadowTests {
    /// digits version 1 (logistic regression) in production, version 2 (MLP) ready, version 3 a
    /// model with other inputs.
    func registry(queue: Int = 1024) throws -> TestRegistry {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .ready, keepPrevious: 2, requireSignature: false)])
        registry.config.shadowQueueSize = queue
        // The agreement figures count every mirror: no CPU budget, and no pause when the
        // machine (running the other suites meanwhile) has little spare CPU.
        registry.config.shadowCPUPercent = 100
        registry.config.shadowMinSpareCPUPercent = 0
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 3, bytes: modelBytes("identity_float.onnx"))
        try registry.start()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        return registry
    }

    func testSplit() throws -> (features: [[Float]], agreement: Int, logreg: [Int64]) {
        let data = FileManager.default.contents(atPath: "\(fixtures)/digits_test.json")!
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return ((object["features"] as! [[Double]]).map { $0.map(Float.init) }, object["agreement"] as! Int,
                (object["logreg_predictions"] as! [NSNumber]).map(\.int64Value))
    }

    /// One mirrored request as the serving path builds it: the first test row, answered by
    /// version 1 (the primary), for version 2 (the shadow).
    func mirrorJob(_ registry: TestRegistry) throws -> ShadowMirror.Job {
        let routes = try #require(registry.daemon!.router.current.models["digits"])
        let shadow = try #require(routes.versions[2])
        let primary = try #require(routes.versions[1])
        let inputs = ["input": try Tensor(shape: [1, 64], scalars: try testSplit().features[0])]
        return ShadowMirror.Job(shadow: shadow, inputs: inputs, outputNames: nil, primary: try primary.servable.predict(inputs, outputs: nil).outputs,
                                primaryOrder: primary.servable.signature.outputs.map(\.name), primarySeconds: 0.001)
    }

    @Test("mirroring every request leaves each answer byte for byte unchanged, and the agreement is exactly the test split's")
    func agreement() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let (features, agreement, logreg) = try testSplit()
        func answers() throws -> [[UInt8]] {
            try features.enumerated().map { index, row in
                let response = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(row, id: "row-\(index)").utf8))
                #expect(response.status == 200)
                return response.body
            }
        }
        let without = try answers()
        #expect(without.map { label(of: HTTPResponse(status: 200, body: $0)) } == logreg.map(Optional.some))

        let (status, set) = try client.json("PUT", "/v1/models/digits/shadow", #"{"version": 2, "percent": 100, "reason": "mlp candidate"}"#)
        #expect(status == 200, "\(set)")
        #expect(set["message"] as? String == "model 'digits': 100% of requests mirrored to version 2")
        #expect(registry.record("digits", 2)?.state == .shadow)

        let with = try answers()
        #expect(with == without, "a shadow changed a client's answer")

        let mirror = registry.daemon!.lifecycle.mirror
        #expect(registry.wait { mirror.reports()["digits"].map { $0.runs + $0.failed + $0.dropped } == features.count } != nil)
        let (_, report) = try client.json("GET", "/v1/models/digits/shadow")
        #expect(report["mirrored"] as? Int == features.count && report["dropped"] as? Int == 0 && report["failed"] as? Int == 0, "\(report)")
        #expect(report["method"] as? String == "top1" && report["output"] as? String == "label")
        #expect(report["compared_rows"] as? Int == features.count)
        #expect(report["agreed_rows"] as? Int == agreement, "the fixtures say logreg and mlp agree on \(agreement) of \(features.count) rows")
        #expect(abs((report["agreement"] as? Double ?? 0) - Double(agreement) / Double(features.count)) < 1e-12)
        #expect((report["shadow_mean_seconds"] as? Double ?? 0) > 0 && (report["primary_mean_seconds"] as? Double ?? 0) > 0)

        // The model listing and the metrics carry the same figures.
        let (_, model) = try client.json("GET", "/v1/models/digits")
        #expect((model["shadow"] as? [String: Any])?["agreed_rows"] as? Int == agreement)
        let scraped = try client.send("GET", "/metrics").body
        let checked = try runWithInput(["/usr/bin/promtool", "check", "metrics"], input: scraped)
        #expect(checked.status == 0, "promtool: \(checked.output)")
        let metrics = String(decoding: scraped, as: UTF8.self)
        #expect(metrics.contains("registryd_shadow_agreed_rows_total{model=\"digits\",version=\"2\"} \(agreement)"))
        #expect(metrics.contains("registryd_shadow_dropped_total{model=\"digits\",version=\"2\"} 0"))
        #expect(metrics.contains("registryd_shadow_run_duration_seconds_count{model=\"digits\",version=\"2\"} \(features.count)"))
    }

    @Test("a pinned request is never mirrored; the share mirrored follows the percent")
    func share() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let row = try testSplit().features[0]
        #expect(try client.json("PUT", "/v1/models/digits/shadow", #"{"version": 2, "percent": 100}"#).0 == 200)
        for _ in 0..<50 {
            #expect(try client.send("POST", "/v2/models/digits/versions/1/infer", body: Array(digitsBody(row).utf8)).status == 200)
        }
        #expect(registry.daemon!.lifecycle.mirror.reports()["digits"]?.mirrored == 0)

        #expect(try client.json("PUT", "/v1/models/digits/shadow", #"{"version": 2, "percent": 20}"#).0 == 200)
        for _ in 0..<2000 {
            #expect(try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(row).utf8)).status == 200)
        }
        let mirrored = registry.daemon!.lifecycle.mirror.reports()["digits"]?.mirrored ?? 0
        // Binomial(2000, 0.2): mean 400, standard deviation 17.9; 6 sigma either side.
        #expect((293...507).contains(mirrored), "\(mirrored) of 2000 mirrored at 20%")
    }

    @Test("the CPU budget: past its share of a second the mirror drops jobs (counted) instead of running them")
    func cpuBudget() throws {
        let registry = try registry()
        let job = try mirrorJob(registry)
        // A budget of 0.2% of a CPU is 2 ms of CPU a second; 2,000 runs of the MLP take far
        // more. (Small on purpose: the mirror thread is idle-scheduled, so on a machine busy with
        // other work it gets little CPU, and must still spend its budget within a second.)
        let mirror = ShadowMirror(capacity: 4096, cpuShare: 0.002)
        let tally = mirror.tally(model: "digits", version: 2, percent: 100)
        for _ in 0..<2000 { mirror.submit(job, tally: tally) }
        let began = Date()
        mirror.start()
        #expect(registry.wait { mirror.queued == 0 } != nil)
        let elapsed = Date().timeIntervalSince(began)
        let report = try #require(mirror.reports()["digits"])
        mirror.stop()
        #expect(report.runs + report.dropped == 2000)
        #expect(report.dropped > 0, "nothing dropped: \(report.runs) runs")
        // Runs stop once the window's 2 ms are spent: their total (CPU) time stays near the budget.
        #expect(report.shadowSeconds < 0.002 * (elapsed.rounded(.up) + 1) + 0.002, "\(report.shadowSeconds) s of runs in \(elapsed) s")
    }

    /// The machine's idle time as the mirror sees it: none at all (every CPU busy), or four idle
    /// CPUs' worth. An injected clock reading, as the rollout tests inject time.
    final class IdleSource: Sendable {
        let busy = Atomic<Bool>(true)
        func seconds() -> Double? {
            busy.load(ordering: .relaxed) ? 1000 : 1000 + 4 * Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        }
    }

    @Test("with too little spare CPU the mirror pauses: offers are dropped (counted) until the machine is idle again")
    func spareCPU() throws {
        let registry = try registry()
        let job = try mirrorJob(registry)
        let idle = IdleSource()
        let mirror = ShadowMirror(capacity: 64, cpuShare: 1, minimumSpare: 0.5, idleTime: { idle.seconds() })
        let tally = mirror.tally(model: "digits", version: 2, percent: 100)
        mirror.start()
        defer { mirror.stop() }
        func report() -> ShadowMirror.Report { mirror.reports()["digits"]! }
        // Every CPU busy: the first measure (a quarter second in) pauses the mirror, and the
        // serving path's offers are refused at once, without a job.
        #expect(registry.wait {
            mirror.submit(job, tally: tally)
            Thread.sleep(forTimeInterval: 0.002)
            return report().dropped > 0
        } != nil)
        let runsWhileBusy = report().runs
        let droppedBefore = report().dropped
        for _ in 0..<100 {  // 0.6 s or more: two windows and more
            mirror.submit(job, tally: tally)
            Thread.sleep(forTimeInterval: 0.006)
        }
        #expect(report().runs == runsWhileBusy, "the mirror ran while the machine had no spare CPU")
        #expect(report().dropped >= droppedBefore + 90, "\(report())")
        #expect(report().mirrored == report().runs + report().dropped + mirror.queued)

        // Idle again: the next measure finds spare CPU, and mirrors run.
        idle.busy.store(false, ordering: .relaxed)
        #expect(registry.wait {
            mirror.submit(job, tally: tally)
            Thread.sleep(forTimeInterval: 0.002)
            return report().runs > runsWhileBusy + 10
        } != nil, "\(report())")
        #expect(report().comparedRows == report().runs && report().failed == 0)
    }

    @Test("/proc/stat's first line gives the idle time: idle plus iowait, in seconds")
    func idleTimeParsing() throws {
        let line = Array("cpu  4705 150 1120 16250 520 0 33 0 0 0\ncpu0 2000 75 560 8125 260 0 16 0 0 0\n".utf8)
        #expect(SystemIdleTime.parse(line[...], ticksPerSecond: 100) == 167.7)
        #expect(SystemIdleTime.parse(Array("intr 1 2 3\n".utf8)[...], ticksPerSecond: 100) == nil)
        #expect(SystemIdleTime.parse(Array("cpu  1 2 3\n".utf8)[...], ticksPerSecond: 100) == nil)
        // The real file parses, and idle time only grows.
        let first = try #require(SystemIdleTime.seconds())
        Thread.sleep(forTimeInterval: 0.05)
        #expect(try #require(SystemIdleTime.seconds()) >= first)
    }

    @Test("the queue is bounded: past its capacity mirrors are dropped and counted, and a stopped mirror runs nothing")
    func boundedQueue() throws {
        let registry = try registry()
        let job = try mirrorJob(registry)
        let mirror = ShadowMirror(capacity: 3)
        let tally = mirror.tally(model: "digits", version: 2, percent: 100)
        for _ in 0..<10 { mirror.submit(job, tally: tally) }  // not started: nothing drains the queue
        var report = try #require(mirror.reports()["digits"])
        #expect(report.mirrored == 10 && report.dropped == 7 && mirror.queued == 3)
        mirror.start()
        #expect(registry.wait { mirror.reports()["digits"]?.runs == 3 } != nil)
        report = try #require(mirror.reports()["digits"])
        #expect(report.comparedRows == 3 && report.method == "top1")
        mirror.stop()
        mirror.submit(job, tally: tally)
        #expect(mirror.reports()["digits"]?.mirrored == 10, "a stopped mirror accepts nothing")
        // Setting the shadow again starts a new report; a job with the old one's tally is ignored.
        mirror.configure(model: "digits", version: 3, percent: 100)
        #expect(mirror.reports()["digits"]?.mirrored == 0)
        mirror.offer(job, tally: tally)
        #expect(mirror.queued == 0 && mirror.reports()["digits"]?.mirrored == 0)
    }

    @Test("a command that fails (the catalog cannot be written) leaves the shadow in force with its report, counts and all")
    func failedCommandKeepsReport() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let row = try testSplit().features[0]
        #expect(try client.json("PUT", "/v1/models/digits/shadow", #"{"version": 2, "percent": 100}"#).0 == 200)
        for _ in 0..<20 { #expect(try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(row).utf8)).status == 200) }
        let mirror = registry.daemon!.lifecycle.mirror
        #expect(registry.wait { mirror.reports()["digits"]?.comparedRows == 20 } != nil)
        // Every write now fails, as on a broken disk: the command is undone.
        registry.daemon!.catalog.close()
        let (status, refused) = try client.json("PUT", "/v1/models/digits/shadow", #"{"version": 2, "percent": 50}"#)
        #expect(status >= 500 && (refused["error"] as? String ?? "").contains("catalog"), "\(status) \(refused)")
        let (ended, _) = try client.json("DELETE", "/v1/models/digits/shadow")
        #expect(ended >= 500)
        var report = try #require(mirror.reports()["digits"])
        #expect(report.percent == 100 && report.mirrored == 20 && report.comparedRows == 20, "the undone command reset the report: \(report)")
        // The routing table in force counts into the same report.
        for _ in 0..<10 { #expect(try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(row).utf8)).status == 200) }
        #expect(registry.wait { mirror.reports()["digits"]?.comparedRows == 30 } != nil, "\(String(describing: mirror.reports()["digits"]))")
        report = try #require(mirror.reports()["digits"])
        #expect(report.mirrored == 30 && report.dropped == 0)
    }

    @Test("a shadow restored at start whose version cannot load still has its report: the listing shows it, --off ends it")
    func restoredShadowNotLoaded() throws {
        let registry = try registry()
        var client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        #expect(try client.json("PUT", "/v1/models/digits/shadow", #"{"version": 2, "percent": 30}"#).0 == 200)
        registry.stop()
        try FileManager.default.removeItem(atPath: "\(registry.root)/digits/2")
        try registry.start()
        client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        #expect(registry.record("digits", 2)?.state == .missing)
        let (status, shown) = try client.json("GET", "/v1/models/digits/shadow")
        #expect(status == 200 && shown["version"] as? Int == 2 && shown["percent"] as? Int == 30 && shown["mirrored"] as? Int == 0, "\(status) \(shown)")
        #expect(registry.daemon!.router.current.models["digits"]?.shadow == nil, "a shadow that is not loaded must not be routed to")
        #expect(try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(try testSplit().features[0]).utf8)).status == 200)
        #expect(try client.json("DELETE", "/v1/models/digits/shadow").0 == 200)
        #expect(try client.json("GET", "/v1/models/digits/shadow").0 == 404)
    }

    @Test("refusals name the problem; the shadow is recorded, survives a restart, and ends with --off or the version's promotion")
    func control() throws {
        let registry = try registry()
        var client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        func put(_ body: String) throws -> (Int, String) {
            let (status, object) = try client.json("PUT", "/v1/models/digits/shadow", body)
            return (status, object["error"] as? String ?? "")
        }
        #expect(try put(#"{"version": 2, "percent": 0}"#) == (400, "shadow percent 0 is outside 1...100"))
        #expect(try put(#"{"version": 2, "percnt": 5}"#).0 == 400)
        #expect(try put(#"{"version": 9}"#) == (404, "model 'digits' version 9 not found"))
        #expect(try put(#"{"version": 1}"#) == (409, "model 'digits' version 1 is production: it already answers the requests a shadow would mirror"))
        let incompatible = try put(#"{"version": 3}"#)
        #expect(incompatible.0 == 409 && incompatible.1.contains("cannot shadow production version 1: input 'input' is missing"), "\(incompatible)")
        #expect(try client.json("GET", "/v1/models/digits/shadow").0 == 404)
        #expect(try client.json("DELETE", "/v1/models/digits/shadow").0 == 404)

        #expect(try put(#"{"version": 2, "percent": 30, "reason": "try mlp"}"#).0 == 200)
        let event = try #require(try registry.daemon!.catalog.events(model: "digits", actions: ["shadow"]).last)
        #expect(event.draft.after == "2@30%" && event.draft.reason == "try mlp" && event.draft.actor.hasPrefix("uid="))

        registry.stop()
        try registry.start()
        client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let (status, restored) = try client.json("GET", "/v1/models/digits/shadow")
        #expect(status == 200 && restored["version"] as? Int == 2 && restored["percent"] as? Int == 30, "\(restored)")
        #expect(registry.daemon!.router.current.models["digits"]?.shadow?.version.version == 2)
        #expect(registry.record("digits", 2)?.state == .shadow)

        let (ended, _) = try client.json("DELETE", "/v1/models/digits/shadow", #"{"reason": "enough"}"#)
        #expect(ended == 200 && registry.record("digits", 2)?.state == .ready)
        #expect(registry.daemon!.router.current.models["digits"]?.shadow == nil)

        #expect(try put(#"{"version": 2, "percent": 30}"#).0 == 200)
        #expect(try client.json("POST", "/v1/models/digits/promote", #"{"version": 2}"#).0 == 200)
        #expect(try client.json("GET", "/v1/models/digits/shadow").0 == 404, "promoting the shadow version ends the shadow")
        #expect(registry.record("digits", 2)?.state == .live)
        #expect(try registry.daemon!.catalog.events(model: "digits", actions: ["shadow"]).last?.draft.reason == "ended by the promotion of version 2")
    }
}


/// The lock-free queue between the serving threads and the mirror thread.
@Suite("bounded lock-free queue")
struct BoundedQueueTests {
    @Test("a full queue refuses at once; elements come out in order, each once, around the ring many times")
    func fullAndOrder() {
        let queue = BoundedQueue<Int>(capacity: 3)
        #expect(queue.pop() == nil && queue.count == 0)
        #expect(queue.push(1) && queue.push(2) && queue.push(3))
        #expect(!queue.push(4), "a full queue accepted a fourth element")
        #expect(queue.count == 3)
        #expect(queue.pop() == 1)
        #expect(queue.push(4))
        #expect([queue.pop(), queue.pop(), queue.pop(), queue.pop()] == [2, 3, 4, nil])
        var next = 5
        for _ in 0..<1000 {  // many laps of a 3-slot ring
            #expect(queue.push(next) && queue.push(next + 1))
            #expect(queue.pop() == next && queue.pop() == next + 1)
            next += 2
        }
        #expect(queue.count == 0)
    }

    @Test("a queue of one: a second push is refused until the first is taken (one slot cannot tell full from empty: the ring has two)")
    func capacityOne() {
        let queue = BoundedQueue<Int>(capacity: 1)
        #expect(queue.push(1))
        #expect(!queue.push(2) && queue.count == 1)
        #expect(queue.pop() == 1 && queue.pop() == nil)
        for i in 0..<100 {
            #expect(queue.push(i) && !queue.push(-1))
            #expect(queue.hasReady && queue.pop() == i && !queue.hasReady)
        }
    }

    @Test("four producers and one consumer on real threads, at capacity 64 and 1: nothing lost, nothing twice, each producer's order kept", arguments: [64, 1])
    func concurrent(capacity: Int) {
        let queue = BoundedQueue<Int>(capacity: capacity)
        let producers = 4, perProducer = capacity == 1 ? 5_000 : 50_000
        let refused = Atomic<Int>(0)
        let group = DispatchGroup()
        for p in 0..<producers {
            group.enter()
            Thread {
                for i in 0..<perProducer {
                    // Retried when full, so that every element goes through exactly once.
                    while !queue.push(p * 1_000_000 + i) { refused.wrappingAdd(1, ordering: .relaxed) }
                }
                group.leave()
            }.start()
        }
        var last = [Int](repeating: -1, count: producers)
        var received = 0
        var outOfOrder = 0
        while received < producers * perProducer {
            guard let value = queue.pop() else { continue }
            let (p, i) = value.quotientAndRemainder(dividingBy: 1_000_000)
            if i != last[p] + 1 { outOfOrder += 1 }
            last[p] = i
            received += 1
        }
        group.wait()
        #expect(outOfOrder == 0)
        #expect(last == [Int](repeating: perProducer - 1, count: producers))
        #expect(queue.pop() == nil && queue.count == 0)
    }
}
