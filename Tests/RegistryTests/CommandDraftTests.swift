import Foundation
import Runtime
import Testing
@testable import Registry

/// Commands as pure functions: a registry state in, a new state plus the catalog writes out,
/// with no catalog, no clock and no queue. The sessions are real (the project's fixtures), so
/// that signatures are what ONNX Runtime reports.
@Suite("commands as values")
struct CommandDraftTests {
    static let environment = try! Environment.shared()
    static let loader = Loader(environment: environment)

    static func loaded(_ model: String, _ version: Int, fixture: String = "digits_logreg.onnx") throws -> LoadedVersion {
        let session = try loader.load(path: "\(fixtures)/\(fixture)")
        let sha = String(repeating: String(version), count: 64).prefix(64)
        return LoadedVersion(model: model, version: version, sha256: String(sha),
                             servable: ONNXServable(session: session, provenance: Provenance(model: model, version: version, sha256: String(sha))),
                             manifest: nil, loadedAt: 0, estimatedBytes: 0)
    }

    static func record(_ model: String, _ version: Int, _ state: VersionState) -> VersionRecord {
        VersionRecord(model: model, version: version, sha256: String(repeating: "a", count: 64), size: 1, path: "/m/\(model)/\(version)/model.onnx",
                      state: state, firstSeen: 1, updatedAt: 1)
    }

    /// digits: version 1 live (production), version 2 ready, both loaded; version 3 failed.
    static func twoLoaded() throws -> RegistryState {
        var state = RegistryState()
        state.records[VersionKey(model: "digits", version: 1)] = record("digits", 1, .live)
        state.records[VersionKey(model: "digits", version: 2)] = record("digits", 2, .ready)
        state.records[VersionKey(model: "digits", version: 3)] = record("digits", 3, .failed)
        state.loaded[VersionKey(model: "digits", version: 1)] = try loaded("digits", 1)
        state.loaded[VersionKey(model: "digits", version: 2)] = try loaded("digits", 2)
        state.aliases["digits"] = ["production": 1]
        state.productionHistory["digits"] = [1]
        return state
    }

    static let config: DaemonConfig = {
        var config = DaemonConfig(modelRoot: "/m", database: "/db")
        config.policies["digits"] = ModelPolicy(onNewVersion: .ready, keepPrevious: 1, requireSignature: false)
        return config
    }()

    @Test("promote: production moves, the old production becomes ready, and one alias write carries both states and the event, stamped with the command's time")
    func promote() throws {
        let before = try Self.twoLoaded()
        var draft = CommandDraft(before, config: Self.config, now: 50)
        let outcome = try draft.promote(model: "digits", version: 2, force: false, actor: "alice", reason: "better")
        #expect(outcome.message == "model 'digits': production is now version 2 (was 1)")
        #expect(draft.state.production(of: "digits") == 2)
        #expect(draft.state.records[VersionKey(model: "digits", version: 2)]?.state == .live)
        #expect(draft.state.records[VersionKey(model: "digits", version: 1)]?.state == .ready)
        #expect(draft.state.records[VersionKey(model: "digits", version: 1)]?.updatedAt == 50)
        #expect(draft.state.productionHistory["digits"] == [1, 2])
        #expect(draft.writes == [.setAlias(model: "digits", alias: "production", version: 2,
                                           states: [StateChange(2, .live, "better"), StateChange(1, .ready, "replaced by version 2")],
                                           event: EventDraft(actor: "alice", action: "promote", model: "digits", version: 2, before: "1", after: "2", reason: "better"))])
        #expect(draft.reported == 0)
        // The state it started from is a value: untouched.
        #expect(before.production(of: "digits") == 1)
        #expect(before.records[VersionKey(model: "digits", version: 2)]?.state == .ready)
    }

    @Test("a refused command leaves no write and no change: a failed version, an unknown version, an incompatible signature without --force")
    func refusals() throws {
        let state = try Self.twoLoaded()
        var draft = CommandDraft(state, config: Self.config, now: 50)
        #expect(throws: RegistryError.self) { try draft.promote(model: "digits", version: 3, force: false, actor: "a", reason: "") }
        #expect(throws: RegistryError.self) { try draft.promote(model: "digits", version: 9, force: false, actor: "a", reason: "") }
        var other = state
        other.loaded[VersionKey(model: "digits", version: 2)] = try Self.loaded("digits", 2, fixture: "identity_float.onnx")
        var incompatible = CommandDraft(other, config: Self.config, now: 50)
        do {
            _ = try incompatible.promote(model: "digits", version: 2, force: false, actor: "a", reason: "")
            Issue.record("an incompatible promotion was accepted")
        } catch {
            #expect(error.message.contains("is not compatible with production version 1"), "\(error.message)")
        }
        #expect(draft.writes.isEmpty && incompatible.writes.isEmpty)
        #expect(draft.state.production(of: "digits") == 1)
    }

    @Test("a promotion over a split and a rollout ends both first, in order, and retention retires the old production when keep_previous is 0")
    func promotionEndsSplitAndRollout() throws {
        var state = try Self.twoLoaded()
        state.splits["digits"] = [1: 90, 2: 10]
        state.rollouts["digits"] = RolloutRecord(id: 7, model: "digits", version: 2, baseline: 1,
                                                 plan: RolloutPlan(steps: [10, 100], intervalSeconds: 60, maxErrorRate: 0.01, maxLatencyRatio: 2, minRequests: 10),
                                                 step: 0, state: .running, note: "", stepStartedAt: 0, canary: WindowStats(), baselineStats: WindowStats(),
                                                 startedAt: 0, updatedAt: 0)
        var config = Self.config
        config.policies["digits"] = ModelPolicy(onNewVersion: .ready, keepPrevious: 0, requireSignature: false)
        var draft = CommandDraft(state, config: config, now: 60)
        _ = try draft.promote(model: "digits", version: 2, force: false, actor: "bob", reason: "")
        let actions = draft.writes.compactMap { $0.event?.action }
        #expect(actions == ["rollout-abort", "split", "promote", "retire"], "\(actions)")
        #expect(draft.state.rollouts["digits"]?.state == .aborted)
        #expect(draft.state.splits["digits"] == nil)
        // keep_previous=0: the previous production is unloaded and retired in the same command.
        #expect(Set(draft.state.loaded.keys.map(\.version)) == [2])
        #expect(draft.state.records[VersionKey(model: "digits", version: 1)]?.state == .retired)
        #expect(draft.reported == 2)
    }

    @Test("a shadow's mirror is configured only as an effect after the commit, and ending it gives the version back its ready state")
    func shadowEffects() throws {
        var draft = CommandDraft(try Self.twoLoaded(), config: Self.config, now: 70)
        _ = try draft.setShadow(model: "digits", version: 2, percent: 25, actor: "a", reason: "")
        #expect(draft.state.records[VersionKey(model: "digits", version: 2)]?.state == .shadow)
        guard case .configureMirror("digits", ShadowSpec(version: 2, percent: 25))? = draft.effects.first else {
            Issue.record("no mirror effect: \(draft.effects)")
            return
        }
        _ = try draft.setShadow(model: "digits", version: nil, percent: 0, actor: "a", reason: "done")
        #expect(draft.state.shadows["digits"] == nil)
        #expect(draft.state.records[VersionKey(model: "digits", version: 2)]?.state == .ready)
        #expect(draft.writes.count == 2)
    }

    @Test("a new rollout gets its id from the database's receipt when the owner adopts it")
    func rolloutIDAdopted() throws {
        var draft = CommandDraft(try Self.twoLoaded(), config: Self.config, now: 80)
        try draft.startRollout(model: "digits", version: 2,
                               plan: RolloutPlan(steps: [10, 50, 100], intervalSeconds: 60, maxErrorRate: 0.01, maxLatencyRatio: 2, minRequests: 10),
                               actor: "a", reason: "")
        #expect(draft.state.rollouts["digits"]?.id == 0)
        #expect(draft.state.splits["digits"] == [1: 90, 2: 10])
        #expect(draft.writes.compactMap { $0.event?.action } == ["rollout-start", "split"])
        draft.adopt([WriteReceipt(eventID: 11, rowID: 42), WriteReceipt(eventID: 12, rowID: nil)])
        #expect(draft.state.rollouts["digits"]?.id == 42)
    }

    @Test("changed bytes under a loaded version: the bytes, the state and the file fact are written together, and the version leaves memory")
    func quarantine() throws {
        var draft = CommandDraft(try Self.twoLoaded(), config: Self.config, now: 90)
        let key = VersionKey(model: "digits", version: 2)
        draft.quarantineChangedBytes(key, found: (hex: String(repeating: "b", count: 64), size: 9), path: "/m/digits/2/model.onnx",
                                     reason: "different bytes", identity: (size: 9, mtime: 5))
        #expect(draft.state.loaded[key] == nil)
        let record = try #require(draft.state.records[key])
        #expect(record.state == .quarantined && record.file == .changed && record.size == 9 && record.mtime == 5)
        #expect(draft.writes.compactMap { $0.event?.action } == ["quarantine", "quarantine"])
        #expect(draft.writes.count == 3)
    }
}

@Suite("pipeline answer's steps parameter")
struct StepsParameterTests {
    @Test("the steps parameter written in one pass is the JSON text of the steps as a JSON string, escaping included")
    func literal() throws {
        let steps = [PredictionStep(step: "router", provenance: Provenance(model: "router", version: 1, sha256: String(repeating: "a", count: 64)), routing: .production, rows: 3),
                     PredictionStep(step: "odd\"id\\", provenance: Provenance(model: "mid", version: 2, sha256: "b"), routing: .split(version: 2, sticky: true), rows: 1)]
        let literal = String(decoding: PredictionStep.jsonStringLiteral(steps), as: UTF8.self)
        let decoded = try #require(try JSONSerialization.jsonObject(with: Data(literal.utf8), options: [.fragmentsAllowed]) as? String)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(decoded.utf8)) as? [[String: Any]])
        #expect(list.count == 2)
        #expect(list[0]["step"] as? String == "router" && list[0]["model"] as? String == "router" && list[0]["version"] as? Int == 1)
        #expect(list[0]["sha256"] as? String == String(repeating: "a", count: 64) && list[0]["routing"] as? String == "production" && list[0]["rows"] as? Int == 3)
        #expect(list[1]["step"] as? String == "odd\"id\\" && list[1]["routing"] as? String == "split arm 2 (sticky)")
    }
}
