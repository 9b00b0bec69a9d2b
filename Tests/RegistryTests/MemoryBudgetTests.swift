import Foundation
import Testing
@testable import Registry

/// The memory budget: the decision on exact numbers, then the daemon following it with real loads.
@Suite("memory budget")
struct MemoryBudgetTests {
    let mib: Int64 = 1 << 20

    func holdings(_ items: [(Int, Int64, Bool)]) -> [MemoryBudget.Holding] {
        items.map { MemoryBudget.Holding(model: "m", version: $0.0, bytes: $0.1 << 20, isProtected: $0.2) }
    }

    @Test("fits; availability first loads over budget; budget first unloads what nothing points at, oldest first; refuses what cannot fit")
    func decisions() {
        let loaded = holdings([(1, 10, false), (2, 10, false), (3, 10, true)])
        #expect(MemoryBudget.decide(budget: 0, loaded: loaded, adding: 1000 * mib, model: "m", order: .budgetFirst) == .fits)
        #expect(MemoryBudget.decide(budget: 40 * mib, loaded: loaded, adding: 10 * mib, model: "m", order: .budgetFirst) == .fits)
        #expect(MemoryBudget.decide(budget: 35 * mib, loaded: loaded, adding: 10 * mib, model: "m", order: .availabilityFirst)
                == .overBudget("memory budget 35.0 MiB: 30.0 MiB loaded + 10.0 MiB new"))
        #expect(MemoryBudget.decide(budget: 35 * mib, loaded: loaded, adding: 10 * mib, model: "m", order: .budgetFirst)
                == .unload([1], "memory budget 35.0 MiB: 30.0 MiB loaded + 10.0 MiB new"))
        #expect(MemoryBudget.decide(budget: 25 * mib, loaded: loaded, adding: 10 * mib, model: "m", order: .budgetFirst)
                == .unload([1, 2], "memory budget 25.0 MiB: 30.0 MiB loaded + 10.0 MiB new"))
        // Version 3 is protected (production, an alias, a split arm or the shadow), another model's versions are not ours to drop.
        let other = loaded + [MemoryBudget.Holding(model: "n", version: 1, bytes: 50 * mib, isProtected: false)]
        guard case .refuse(let why) = MemoryBudget.decide(budget: 15 * mib, loaded: other, adding: 10 * mib, model: "m", order: .budgetFirst) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(why == "memory budget 15.0 MiB: 80.0 MiB loaded + 10.0 MiB new exceeds the budget even after unloading the versions nothing points at (budget_first)")
        #expect(MemoryBudget.estimate(size: 100 * mib) == 208 * mib)
        #expect((MemoryBudget.residentBytes() ?? 0) > 4 * mib, "this process's RSS is readable")
    }

    func registry(budgetMiB: Int64, order: DaemonConfig.LoadOrder) throws -> TestRegistry {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .live, keepPrevious: 2, requireSignature: false)])
        registry.config.memoryBudgetBytes = budgetMiB << 20
        registry.config.loadOrder = order
        try registry.makeModelDirectory("digits")
        return registry
    }

    @Test("budget first: a third digits version (about 8 MiB each) unloads the previous version kept for rollback, never production")
    func budgetFirst() throws {
        let registry = try registry(budgetMiB: 20, order: .budgetFirst)
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
        #expect(registry.waitForState("digits", 2, [.live]) != nil)
        #expect(registry.record("digits", 1)?.state == .ready, "two fit: version 1 stays loaded for rollback")
        try dropAtomically(root: registry.root, model: "digits", version: 3, bytes: modelBytes("digits_logreg.onnx", variant: 3))
        #expect(registry.waitForState("digits", 3, [.live]) != nil)
        let first = try #require(registry.record("digits", 1))
        #expect(first.state == .retired)
        #expect(first.reason.hasPrefix("unloaded to make room (memory budget 20.0 MiB: ") && first.reason.hasSuffix("budget_first)"), "\(first.reason)")
        #expect(Set(registry.daemon!.router.current.models["digits"]!.versions.keys) == [2, 3])
        // The measured resident memory is reported with the estimate.
        let detail = try HTTPTestClient(unixPath: registry.config.controlSocket).json("GET", "/v1/models/digits/versions/3").1
        #expect(detail["memory_estimate_bytes"] as? Int ?? 0 > 8 << 20 && detail["memory_measured_bytes"] is Int, "\(detail)")
    }

    @Test("availability first: over the budget the new version loads anyway, with a warning, and the old stays")
    func availabilityFirst() throws {
        let registry = try registry(budgetMiB: 12, order: .availabilityFirst)
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
        #expect(registry.waitForState("digits", 2, [.live]) != nil)
        #expect(registry.record("digits", 1)?.state == .ready)
        #expect(registry.lines.all.contains { $0.contains("memory budget exceeded; loading the new version before unloading the old (availability_first)") })
    }

    @Test("budget first with nothing to unload: the version fails with the budget's figures, and the daemon keeps running")
    func refused() throws {
        let registry = try registry(budgetMiB: 4, order: .budgetFirst)
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.failed]) != nil)
        let reason = registry.record("digits", 1)?.reason ?? ""
        #expect(reason.hasPrefix("memory budget 4.0 MiB: 0.0 MiB loaded + 8.0 MiB new exceeds the budget"), "\(reason)")
        #expect(try HTTPTestClient(unixPath: registry.config.controlSocket).json("GET", "/v1/status").0 == 200)
    }
}
