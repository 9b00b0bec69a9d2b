import Foundation
import Testing
@testable import Registry

/// The rollout rules on fixed windows: the decision is a pure function, so every gate is
/// checked exactly, latency included (end-to-end tests below set the latency gate out of reach,
/// because real latencies on a shared machine are noise, not a specification).
@Suite("rollout policy")
struct RolloutPolicyTests {
    let plan = RolloutPlan(steps: [1, 5, 25, 50, 100], intervalSeconds: 300, maxErrorRate: 0.01, maxLatencyRatio: 1.5, minRequests: 200)

    func window(requests: Int, errors: Int = 0, latency: Double = 0.0004) -> WindowStats {
        var w = WindowStats()
        w.requests = requests
        w.errors = errors
        let bucket = ServingStats.bounds.firstIndex { latency <= $0 }!
        w.buckets[bucket] = requests
        return w
    }

    @Test("below min_requests a step holds at the interval's end and waits before it, whatever the errors")
    func hold() {
        let canary = window(requests: 199, errors: 199)
        #expect(RolloutPolicy.decide(plan: plan, step: 0, canary: canary, baseline: window(requests: 5000), intervalOver: true)
                == .hold("insufficient data: 199 of 200 canary requests in the window"))
        #expect(RolloutPolicy.decide(plan: plan, step: 0, canary: canary, baseline: window(requests: 5000), intervalOver: false) == .wait)
    }

    @Test("a failed error gate rolls back at once, before the interval ends; exactly at the limit passes")
    func errors() {
        let baseline = window(requests: 5000)
        guard case .rollBack(let why) = RolloutPolicy.decide(plan: plan, step: 2, canary: window(requests: 1000, errors: 11), baseline: baseline, intervalOver: false) else {
            Issue.record("expected a rollback")
            return
        }
        #expect(why.contains("error rate 0.0110 over 1000 requests exceeds 0.0100"))
        #expect(RolloutPolicy.decide(plan: plan, step: 2, canary: window(requests: 1000, errors: 10), baseline: baseline, intervalOver: true) == .advance)
    }

    @Test("the latency gate compares p99 with the baseline's over the same window")
    func latency() {
        let baseline = window(requests: 5000, latency: 0.001)
        #expect(RolloutPolicy.decide(plan: plan, step: 0, canary: window(requests: 500, latency: 0.001), baseline: baseline, intervalOver: true) == .advance)
        guard case .rollBack(let why) = RolloutPolicy.decide(plan: plan, step: 0, canary: window(requests: 500, latency: 0.004), baseline: baseline, intervalOver: true) else {
            Issue.record("expected a rollback")
            return
        }
        #expect(why.contains("p99 latency over 0.0025 s (bucket 0.0025–0.0050 s) exceeds 1.5 x the baseline's p99 of at most 0.0010 s"), "\(why)")
        // One bucket up is within the histogram's resolution, not a regression: a healthy
        // sub-millisecond canary at 0.9 ms against a 0.4 ms baseline is not rolled back.
        #expect(RolloutPolicy.decide(plan: plan, step: 0, canary: window(requests: 500, latency: 0.0009),
                                     baseline: window(requests: 5000, latency: 0.0004), intervalOver: true) == .advance)
        // A baseline with too little data cannot judge latency.
        #expect(RolloutPolicy.decide(plan: plan, step: 0, canary: window(requests: 500, latency: 0.004), baseline: window(requests: 10), intervalOver: true) == .advance)
    }

    @Test("the last step promotes; plans are validated")
    func lastStepAndPlans() {
        #expect(RolloutPolicy.decide(plan: plan, step: 4, canary: window(requests: 500), baseline: window(requests: 500), intervalOver: true) == .promote)
        #expect(RolloutPlan(steps: [5, 1, 100], intervalSeconds: 1, maxErrorRate: 0, maxLatencyRatio: 1, minRequests: 1).problem == "steps must increase")
        #expect(RolloutPlan(steps: [5, 50], intervalSeconds: 1, maxErrorRate: 0, maxLatencyRatio: 1, minRequests: 1).problem == "the last step must be 100")
        #expect(plan.problem == nil)
    }
}

/// Gradual rollouts with a clock the test moves: every rule decided in milliseconds.
@Suite("rollouts", .serialized)
struct RolloutTests {
    let clock = ManualClock()

    /// digits version 1 (logistic regression) in production, and `canary` as version 2.
    func registry(canary: String) throws -> TestRegistry {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .ready, keepPrevious: 2, requireSignature: false)])
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes(canary))
        try registry.start(clock: clock)
        #expect(registry.waitForState("digits", 2, [.ready]) != nil)
        return registry
    }

    /// Sends `count` keyed predictions; `badEvery` makes every n-th one carry feature 0 = 99
    /// (which the faulty fixture refuses at run time). Returns how many got each status.
    @discardableResult
    func traffic(_ registry: TestRegistry, count: Int, offset: Int = 0, badEvery: Int? = nil) throws -> [Int: Int] {
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        var good = try digitsRow(0).0
        good[0] = 0
        var bad = good
        bad[0] = 99
        var statuses: [Int: Int] = [:]
        for i in 0..<count {
            let features = badEvery.map { (i + 1) % $0 == 0 } == true ? bad : good
            let response = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(features).utf8),
                                           headers: [("X-Routing-Key", "user-\(offset + i)")])
            statuses[response.status, default: 0] += 1
        }
        return statuses
    }

    func start(_ registry: TestRegistry, _ body: String) throws -> [String: Any] {
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let (status, object) = try client.json("POST", "/v1/models/digits/rollout", body)
        #expect(status == 200, "\(object)")
        return object
    }

    func status(_ registry: TestRegistry) throws -> [String: Any] {
        try HTTPTestClient(unixPath: registry.config.controlSocket).json("GET", "/v1/models/digits/rollout").1
    }

    @Test("a healthy canary advances step by step and is promoted after the last step")
    func healthy() throws {
        let registry = try registry(canary: "digits_mlp.onnx")
        let started = try start(registry, #"{"version": 2, "steps": [10, 50, 100], "interval_seconds": 300, "min_requests": 20, "max_latency_ratio": 1000, "reason": "mlp"}"#)
        #expect(started["percent"] as? Int == 10 && started["step"] as? Int == 1)
        for (index, percent) in [10, 50, 100].enumerated() {
            #expect(try status(registry)["percent"] as? Int == percent)
            try traffic(registry, count: 300, offset: index * 1000)
            // Before the interval ends, nothing is decided.
            registry.daemon!.lifecycle.rolloutTick()
            #expect(try status(registry)["step"] as? Int == index + 1)
            clock.advance(by: 301)
            registry.daemon!.lifecycle.rolloutTick()
        }
        let final = try status(registry)
        #expect(final["state"] as? String == "promoted", "\(final)")
        #expect(try registry.daemon!.router.resolve(model: "digits").0.version == 2)
        #expect(try registry.daemon!.router.resolve(model: "digits", routingKey: "anyone").1 == .production)
        let actions = try registry.daemon!.catalog.events(model: "digits").map(\.draft.action)
        #expect(actions.filter { $0 == "rollout-step" }.count == 2)
        #expect(actions.contains("rollout-start") && actions.last == "promote")
    }

    @Test("a canary that fails 5% of requests is rolled back to 0% within one interval, and the version is marked")
    func failing() throws {
        let registry = try registry(canary: "digits_faulty.onnx")
        _ = try start(registry, #"{"version": 2, "steps": [25, 50, 100], "interval_seconds": 300, "max_error_rate": 0.01, "min_requests": 50, "max_latency_ratio": 1000}"#)
        let statuses = try traffic(registry, count: 400, badEvery: 20)
        #expect((statuses[500] ?? 0) > 0, "the faulty canary failed no request: \(statuses)")
        registry.daemon!.lifecycle.rolloutTick()  // no clock movement: within the first interval
        let after = try status(registry)
        #expect(after["state"] as? String == "rolled_back", "\(after)")
        #expect((after["note"] as? String)?.contains("error rate") == true)
        #expect(after["percent"] as? Int == 0)
        #expect(try registry.daemon!.router.resolve(model: "digits", routingKey: "user-1").0.version == 1)
        #expect(registry.daemon!.router.current.models["digits"]?.arms == nil)
        #expect(registry.record("digits", 2)?.reason.contains("rolled back by its rollout at 25%") == true)
        let rollback = try registry.daemon!.catalog.events(model: "digits", actions: ["rollout-rollback"])
        #expect(rollback.count == 1 && rollback[0].draft.actor == EventDraft.daemon)
    }

    @Test("a canary that stops being loaded mid-rollout (its bytes changed, found by verify) is rolled back at the next tick, never promoted")
    func canaryUnloaded() throws {
        let registry = try registry(canary: "digits_mlp.onnx")
        _ = try start(registry, #"{"version": 2, "steps": [50, 100], "interval_seconds": 60, "min_requests": 10, "max_latency_ratio": 1000}"#)
        try traffic(registry, count: 100)
        let handle = FileHandle(forWritingAtPath: "\(registry.root)/digits/2/model.onnx")!
        handle.seekToEndOfFile()
        handle.write(Data([0xC0, 0x3E, 0x07]))
        handle.closeFile()
        let (code, report) = try HTTPTestClient(unixPath: registry.config.controlSocket).json("POST", "/v1/verify?model=digits", "{}")
        #expect(code == 200 && report["failed"] as? Int == 1, "\(report)")
        clock.advance(by: 61)
        registry.daemon!.lifecycle.rolloutTick()
        let after = try status(registry)
        #expect(after["state"] as? String == "rolled_back", "\(after)")
        #expect((after["note"] as? String)?.contains("no longer loaded (quarantined)") == true, "\(after)")
        #expect(try registry.daemon!.catalog.aliases(model: "digits")["production"] == 1)
        #expect(try registry.daemon!.router.resolve(model: "digits", routingKey: "user-1").0.version == 1)
        #expect(try traffic(registry, count: 50)[200] == 50)
    }

    @Test("with too little canary traffic a step holds as 'insufficient data': neither pass nor fail")
    func insufficientData() throws {
        let registry = try registry(canary: "digits_mlp.onnx")
        _ = try start(registry, #"{"version": 2, "steps": [10, 100], "interval_seconds": 60, "min_requests": 200, "max_latency_ratio": 1000}"#)
        try traffic(registry, count: 50)
        for _ in 0..<3 {
            clock.advance(by: 61)
            registry.daemon!.lifecycle.rolloutTick()
            let now = try status(registry)
            #expect(now["state"] as? String == "running" && now["step"] as? Int == 1 && now["percent"] as? Int == 10)
            #expect((now["note"] as? String)?.hasPrefix("insufficient data:") == true, "\(now)")
        }
        #expect(try registry.daemon!.catalog.events(model: "digits", actions: ["rollout-hold"]).count == 1, "a hold is recorded once, not every tick")
        #expect(try registry.daemon!.catalog.aliases(model: "digits")["production"] == 1)
    }

    @Test("a restart mid-rollout resumes at the same step with its window")
    func restart() throws {
        let registry = try registry(canary: "digits_mlp.onnx")
        _ = try start(registry, #"{"version": 2, "steps": [10, 50, 100], "interval_seconds": 300, "min_requests": 20, "max_latency_ratio": 1000}"#)
        try traffic(registry, count: 300)
        clock.advance(by: 301)
        registry.daemon!.lifecycle.rolloutTick()
        #expect(try status(registry)["step"] as? Int == 2)
        try traffic(registry, count: 100, offset: 5000)
        registry.daemon!.lifecycle.rolloutTick()
        let before = try status(registry)
        let canaryBefore = (before["canary"] as? [String: Any])?["requests"] as? Int ?? 0
        #expect(canaryBefore > 0)
        registry.stop()
        try registry.start(clock: clock)
        let after = try status(registry)
        #expect(after["state"] as? String == "running" && after["step"] as? Int == 2 && after["percent"] as? Int == 50, "\(after)")
        #expect((after["canary"] as? [String: Any])?["requests"] as? Int == canaryBefore, "the window survives the restart")
        let keyArms = try (0..<200).map { try registry.daemon!.router.resolve(model: "digits", routingKey: "user-\($0)").0.version }
        #expect(keyArms.contains(2) && keyArms.contains(1), "the 50% split is back")
        try traffic(registry, count: 100, offset: 9000)
        clock.advance(by: 301)
        registry.daemon!.lifecycle.rolloutTick()
        try traffic(registry, count: 50, offset: 9500)
        clock.advance(by: 301)
        registry.daemon!.lifecycle.rolloutTick()
        #expect(try status(registry)["state"] as? String == "promoted")
    }

    @Test("pause, resume, abort; refusals for a bad plan, a second rollout, a manual split during one")
    func commands() throws {
        let registry = try registry(canary: "digits_mlp.onnx")
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        #expect(try client.json("POST", "/v1/models/digits/rollout", #"{"version": 2, "steps": [50, 10]}"#).0 == 400)
        #expect(try client.json("POST", "/v1/models/digits/rollout", #"{"version": 1}"#).0 == 409)
        #expect(try client.json("GET", "/v1/models/digits/rollout").0 == 404)
        _ = try start(registry, #"{"version": 2, "steps": [20, 100], "interval_seconds": 10, "min_requests": 1, "max_latency_ratio": 1000}"#)
        #expect(try client.json("POST", "/v1/models/digits/rollout", #"{"version": 2}"#).0 == 409)
        #expect(try client.json("PUT", "/v1/models/digits/split", #"{"weights": {"1": 50, "2": 50}}"#).0 == 409)
        #expect(try client.json("POST", "/v1/models/digits/rollout/pause", #"{"reason": "night"}"#).1["state"] as? String == "paused")
        try traffic(registry, count: 50)
        clock.advance(by: 11)
        registry.daemon!.lifecycle.rolloutTick()
        #expect(try status(registry)["step"] as? Int == 1, "a paused rollout is not judged")
        #expect(try client.json("POST", "/v1/models/digits/rollout/resume", "{}").1["state"] as? String == "running")
        let (aborted, object) = try client.json("POST", "/v1/models/digits/rollout/abort", #"{"reason": "changed our mind"}"#)
        #expect(aborted == 200 && object["state"] as? String == "aborted" && object["percent"] as? Int == 0)
        #expect(registry.daemon!.router.current.models["digits"]?.arms == nil)
        #expect(try client.json("POST", "/v1/models/digits/rollout/abort", "{}").0 == 409)
        #expect(try client.json("POST", "/v1/models/digits/rollout/explode", "{}").0 == 404)
    }
}
