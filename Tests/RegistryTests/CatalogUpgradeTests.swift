import Foundation
import Runtime
import Testing
@testable import Registry

/// A catalog written by an earlier release opens with this build and serves what it recorded.
@Suite("catalog upgrade", .serialized)
struct CatalogUpgradeTests {
    @Test("a catalog written by registryd 0.4.0 opens and serves the same versions, aliases, split, shadow and rollout; its audit chain is intact")
    func opensTheCatalogOf040() throws {
        let registry = TestRegistry()
        for (model, version, file) in [("digits", 1, "digits_logreg.onnx"), ("digits", 2, "digits_mlp.onnx"), ("ocr", 1, "digits_mlp.onnx"), ("ocr", 2, "digits_logreg.onnx")] {
            try registry.makeModelDirectory(model)
            try dropAtomically(root: registry.root, model: model, version: version, bytes: modelBytes(file))
        }
        try FileManager.default.copyItem(atPath: "\(repositoryRoot)/Tests/Fixtures/catalogs/catalog-0.4.0.sqlite", toPath: registry.database)
        let daemon = try registry.start()

        let models = daemon.lifecycle.status()
        let digits = try #require(models.first { $0.name == "digits" })
        let ocr = try #require(models.first { $0.name == "ocr" })
        #expect(digits.versions.map(\.state) == [.live, .ready])
        #expect(ocr.versions.map(\.state) == [.live, .shadow])
        #expect(digits.versions.map(\.sha256) == [SHA256.hex(of: modelBytes("digits_logreg.onnx")), SHA256.hex(of: modelBytes("digits_mlp.onnx"))])
        #expect(digits.aliases == ["production": 1] && ocr.aliases == ["production": 1, "candidate": 2])
        #expect(digits.loadedVersions == [1, 2] && ocr.loadedVersions == [1, 2])

        let snapshot = daemon.lifecycle.snapshot()
        #expect(snapshot.splits["digits"] == [1: 90, 2: 10], "the paused rollout's split")
        #expect(snapshot.splits["ocr"] == [1: 70, 2: 30])
        let rollout = try #require(snapshot.rollouts["digits"])
        #expect(rollout.version == 2 && rollout.baseline == 1 && rollout.state == .paused && rollout.plan.steps == [10, 50, 100])

        // What serves: the routing table built from it.
        let table = daemon.router.current
        #expect(table.models["digits"]?.production?.version == 1)
        #expect(table.models["digits"]?.arms?.map(\.version.version) == [2, 1])
        #expect(table.models["ocr"]?.shadow?.version.version == 2 && table.models["ocr"]?.shadow?.percent == 50)
        let (row, expected, _) = try digitsRow()
        let answer = try daemon.predict(model: "digits", version: 1, inputs: ["input": Tensor(shape: [1, 64], scalars: row)])
        #expect(try answer.outputs["label"]?.scalars(as: Int64.self) == [expected])

        // The audit trail: every event of 0.4.0 kept, the chain intact, new events appended to it.
        #expect(try daemon.catalog.verifyChain().isIntact)
        let events = try daemon.catalog.events(limit: 1000)
        #expect(events.contains { $0.draft.action == "rollout-start" } && events.contains { $0.draft.action == "shadow" })
        _ = try daemon.lifecycle.setAlias(model: "digits", alias: "stable", version: 1, actor: "test", reason: "after the upgrade")
        #expect(try daemon.catalog.verifyChain().isIntact)
    }
}
