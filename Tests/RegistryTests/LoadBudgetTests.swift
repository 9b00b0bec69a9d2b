import Foundation
import Testing
@testable import Registry

/// Every load goes through the memory budget, not only a new artifact's: the startup restore and
/// a rollback's reload follow `load_order` too (digits versions are about 8 MiB each, by estimate).
@Suite("memory budget on every load", .serialized)
struct LoadBudgetTests {
    /// Two models' production versions loaded under a budget that holds both, then stopped.
    func twoModels(budgetMiB: Int64) throws -> TestRegistry {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .live, keepPrevious: 0, requireSignature: false),
                                               "other": ModelPolicy(onNewVersion: .live, keepPrevious: 0, requireSignature: false)])
        registry.config.memoryBudgetBytes = budgetMiB << 20
        registry.config.loadOrder = .budgetFirst
        try registry.makeModelDirectory("digits")
        try registry.makeModelDirectory("other")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try dropAtomically(root: registry.root, model: "other", version: 1, bytes: modelBytes("digits_mlp.onnx"))
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        #expect(registry.waitForState("other", 1, [.live]) != nil)
        return registry
    }

    @Test("a restart under budget_first loads what fits, production first, and refuses the rest naming the figures")
    func restartBudgetFirst() throws {
        let registry = try twoModels(budgetMiB: 20)
        registry.stop()
        registry.config.memoryBudgetBytes = 12 << 20
        try registry.start()
        #expect(registry.record("digits", 1)?.state == .live)
        let other = try #require(registry.record("other", 1))
        #expect(other.state == .retired)
        #expect(other.reason.hasPrefix("not loaded at startup: memory budget 12.0 MiB: 8.0 MiB loaded + 8.0 MiB new exceeds the budget"), "\(other.reason)")
        #expect(Set(registry.daemon!.router.current.models.keys.filter { registry.daemon!.router.current.models[$0]!.production != nil }) == ["digits"])
    }

    @Test("a restart under availability_first loads everything and logs the overrun")
    func restartAvailabilityFirst() throws {
        let registry = try twoModels(budgetMiB: 20)
        registry.stop()
        registry.config.memoryBudgetBytes = 12 << 20
        registry.config.loadOrder = .availabilityFirst
        try registry.start()
        #expect(registry.record("digits", 1)?.state == .live)
        #expect(registry.record("other", 1)?.state == .live)
        #expect(registry.lines.all.contains { $0.contains("memory budget exceeded") && $0.contains("model.name=other") }, "\(registry.lines.all.suffix(20))")
    }

    /// digits 2 promoted over 1, which is retired (keep_previous 0), beside `other`: 16 MiB loaded.
    func retiredBeside(order: DaemonConfig.LoadOrder) throws -> TestRegistry {
        let registry = try twoModels(budgetMiB: 20)
        registry.daemon!.lifecycle.apply({ var c = registry.config; c.loadOrder = .availabilityFirst; c.memoryBudgetBytes = 0; return c }())
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx", variant: 2))
        #expect(registry.waitForState("digits", 2, [.live]) != nil)
        #expect(registry.waitForState("digits", 1, [.retired]) != nil)
        registry.config.loadOrder = order
        registry.daemon!.lifecycle.apply(registry.config)
        return registry
    }

    @Test("a rollback's reload under budget_first that does not fit is refused naming the figures, and production stays")
    func rollbackBudgetFirst() throws {
        let registry = try retiredBeside(order: .budgetFirst)
        do throws(RegistryError) {
            _ = try registry.daemon!.lifecycle.rollback(model: "digits", to: nil, actor: "test", reason: "")
            Issue.record("the rollback was not refused")
        } catch {
            #expect(error.code == .conflict)
            #expect(error.message.contains("cannot be loaded for the rollback: does not fit: memory budget 20.0 MiB: 16.0 MiB loaded + 8.0 MiB new"), "\(error.message)")
        }
        #expect(registry.daemon!.router.current.models["digits"]?.production?.version == 2)
        #expect(registry.record("digits", 1)?.state == .retired)
    }

    @Test("a rollback's reload under availability_first loads over the budget, logs it, and switches")
    func rollbackAvailabilityFirst() throws {
        let registry = try retiredBeside(order: .availabilityFirst)
        let outcome = try registry.daemon!.lifecycle.rollback(model: "digits", to: nil, actor: "test", reason: "")
        #expect(outcome.loadedFirst && outcome.version == 1)
        #expect(registry.daemon!.router.current.models["digits"]?.production?.version == 1)
        #expect(registry.lines.all.contains { $0.contains("memory budget exceeded") && $0.contains("model.version=1") }, "\(registry.lines.all.suffix(20))")
    }
}
