import Foundation
import Runtime

/// What a control command did, for the operator and the audit trail.
public struct CommandOutcome: Sendable, Equatable {
    public var version: Int?
    public var previous: Int?
    public var message: String
    public var loadedFirst = false
    public var forced = false
    public var eventID: Int64?
}

/// The control plane's commands. Each is a ``CommandDraft`` step run by ``command(_:_:)`` on the
/// lifecycle's serial queue, so two commands on one model are serialised (both recorded, the
/// second seeing the first's result), and each writes its event in the same transaction as its
/// change, before serving sees the change.
extension Lifecycle {
    /// Makes `version` production (``CommandDraft/promote(model:version:force:actor:reason:)``).
    public func promote(model: String, version: Int, force: Bool, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        try outcome("promote") { draft throws(RegistryError) in
            try draft.promote(model: model, version: version, force: force, actor: actor, reason: reason)
        }
    }

    /// Points a non-production alias at a version, or removes it (`version` nil).
    public func setAlias(model: String, alias: String, version: Int?, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        try outcome("alias") { draft throws(RegistryError) in
            try draft.setAlias(model: model, alias: alias, version: version, actor: actor, reason: reason)
        }
    }

    /// Sets a weighted split of the model's unpinned traffic (version to percent, summing to 100),
    /// or ends it (`weights` nil). Every version in it must be loaded.
    public func setSplit(model: String, weights: [Int: Int]?, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        try outcome("split") { draft throws(RegistryError) in
            try draft.setSplit(model: model, weights: weights, actor: actor, reason: reason)
        }
    }

    /// Mirrors `percent` of the model's routed requests to `version`, off the client's path, or
    /// ends the shadow (`version` nil).
    public func setShadow(model: String, version: Int?, percent: Int, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        try outcome("shadow") { draft throws(RegistryError) in
            try draft.setShadow(model: model, version: version, percent: percent, actor: actor, reason: reason)
        }
    }

    /// What served `model`'s unpinned traffic at time `at`: the production version and the split
    /// then, replayed from the audit trail, with the event that set it.
    public func servedAt(model: String, at: Double) throws(RegistryError) -> (version: Int?, split: [Int: Int]?, eventID: Int64?, since: Double?) {
        let events = try catalog.events(model: model, actions: ["promote", "rollback", "split"], until: at, limit: Int.max)
        if events.isEmpty, try catalog.versions(model: model).isEmpty { throw RegistryError(.notFound, "model '\(model)' not found") }
        var version: Int?
        var split: [Int: Int]?
        var eventID: Int64?
        var since: Double?
        for event in events {
            switch event.draft.action {
            case "split":
                split = event.draft.after.flatMap(RouteSpec.parseDescription)
            default:
                version = event.draft.after.flatMap { Int($0) }
            }
            eventID = event.id
            since = event.at
        }
        return (version, split, eventID, since)
    }

    // MARK: Helpers (on the queue)

    func restoreProductionHistory() throws(RegistryError) -> [String: [Int]] {
        var history: [String: [Int]] = [:]
        for event in try catalog.events(actions: ["promote", "rollback"], limit: Int.max) {
            guard let model = event.draft.model, let version = event.draft.after.flatMap({ Int($0) }) else { continue }
            ProductionHistory.record(action: event.draft.action, version: version, in: &history[model, default: []])
        }
        return history
    }

    /// Alias names: a letter, then letters, digits, `-` or `_`; at most 64.
    static func isValidAlias(_ name: String) -> Bool {
        guard let first = name.utf8.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), name.utf8.count <= 64 else { return false }
        return name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }
    }

    /// Every model's status for the control API, read on the queue.
    public func snapshot() -> (models: [ModelStatus], splits: [String: [Int: Int]], rollouts: [String: RolloutRecord]) {
        queue.sync {
            let models = Set(state.records.keys.map(\.model)).union(state.aliases.keys)
            let statuses = models.sorted().map { model in
                ModelStatus(
                    name: model,
                    versions: state.records.filter { $0.key.model == model }.sorted { $0.key < $1.key }.map(\.value),
                    aliases: state.aliases[model] ?? [:],
                    loadedVersions: Set(state.loaded.keys.filter { $0.model == model }.map(\.version)))
            }
            return (statuses, state.splits, state.rollouts)
        }
    }
}

/// Whether a candidate version can replace production without breaking its clients: a pure check.
public enum SignatureCompatibility {
    /// The first difference that would break a client of `current`, or nil when compatible:
    /// every input of `current` must exist in `candidate` with the same element type and rank,
    /// and `candidate` must need no input that `current` did not.
    public static func mismatch(current: [TensorInfo], candidate: [TensorInfo]) -> String? {
        let candidateInputs = Dictionary(candidate.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for input in current {
            guard let other = candidateInputs[input.name] else { return "input '\(input.name)' is missing" }
            if other.elementType != input.elementType {
                return "input '\(input.name)' is \(other.elementType) instead of \(input.elementType)"
            }
            if other.shape.count != input.shape.count {
                return "input '\(input.name)' has rank \(other.shape.count) instead of \(input.shape.count)"
            }
        }
        let currentNames = Set(current.map(\.name))
        if let extra = candidate.first(where: { !currentNames.contains($0.name) }) {
            return "input '\(extra.name)' is new and production's clients do not send it"
        }
        return nil
    }
}
