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

/// The control plane's commands. Each runs on the lifecycle's serial queue, so two commands on
/// one model are serialised (both recorded, the second seeing the first's result), and each
/// writes its event in the same transaction as its change, before serving sees the change.
extension Lifecycle {
    /// Makes `version` production. It must be loaded and servable, and its inputs compatible
    /// with the current production's (same names, element types and ranks) unless `force`.
    /// A split in force is ended: promotion sends all unpinned traffic to one version.
    public func promote(model: String, version: Int, force: Bool, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        try onQueue(atomically: "promote") { () throws(RegistryError) -> CommandOutcome in
            let key = try existingKey(model: model, version: version)
            let record = records[key]!
            guard let candidate = loaded[key], record.state.isServable else {
                let why = record.reason.isEmpty ? "" : " (\(record.reason))"
                throw RegistryError(.conflict, "model '\(model)' version \(version) is \(record.state.rawValue)\(why); only a ready, loaded version can be promoted")
            }
            let previous = aliases[model]?["production"]
            if previous == version && splits[model] == nil {
                throw RegistryError(.conflict, "model '\(model)' version \(version) is already production")
            }
            var outcome = CommandOutcome(version: version, previous: previous, message: "")
            var eventReason = reason
            if let previous, previous != version, let current = loaded[Key(model: model, version: previous)],
               let mismatch = SignatureCompatibility.mismatch(current: current.servable.signature.inputs, candidate: candidate.servable.signature.inputs) {
                guard force else {
                    throw RegistryError(.conflict, "model '\(model)' version \(version) is not compatible with production version \(previous): \(mismatch); use --force to promote anyway")
                }
                outcome.forced = true
                eventReason = "FORCED despite incompatible signature (\(mismatch))" + (reason.isEmpty ? "" : ": \(reason)")
            }
            try supersedeRollout(model: model, actor: actor, by: "promote")
            try endSplit(model: model, actor: actor, reason: "ended by the promotion of version \(version)")
            if shadows[model]?.version == version {
                try endShadow(model: model, actor: actor, reason: "ended by the promotion of version \(version)")
            }
            outcome.eventID = try promoteLocked(key, actor: actor, reason: eventReason)
            outcome.message = previous.map { "model '\(model)': production is now version \(version) (was \($0))" }
                ?? "model '\(model)': production is now version \(version)"
            if outcome.forced { outcome.message += "; forced despite an incompatible signature (recorded)" }
            return outcome
        }
    }

    /// Points a non-production alias at a version, or removes it (`version` nil).
    public func setAlias(model: String, alias: String, version: Int?, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        try onQueue(atomically: "alias") { () throws(RegistryError) -> CommandOutcome in
            guard Lifecycle.isValidAlias(alias) else {
                throw RegistryError(.invalidArgument, "alias '\(alias)' is not valid: use 1-64 of a-z, 0-9, '-', '_', starting with a letter")
            }
            guard records.keys.contains(where: { $0.model == model }) else { throw RegistryError(.notFound, "model '\(model)' not found") }
            let previous = aliases[model]?[alias]
            if alias == "production" {
                guard let version else {
                    throw RegistryError(.conflict, "the production alias cannot be removed; promote or roll back instead")
                }
                _ = try existingKey(model: model, version: version)
                throw RegistryError(.conflict, "set production with 'promote' (it checks the signature) or 'rollback'")
            }
            guard let version else {
                guard let previous else { throw RegistryError(.notFound, "model '\(model)' has no alias '\(alias)'") }
                // A version that was `candidate` only by this alias is plain `ready` again.
                let states: [(version: Int, state: VersionState, reason: String)] =
                    alias == "candidate" && records[Key(model: model, version: previous)]?.state == .candidate
                    ? [(previous, .ready, "the candidate alias was removed")] : []
                let now = clock.now()
                let eventID = try catalog.setAlias(model: model, alias: alias, version: nil, states: states, at: now,
                                                   event: EventDraft(actor: actor, action: "alias", model: model, version: previous,
                                                                     before: "\(alias)=\(previous)", after: nil, reason: reason))
                aliases[model]?[alias] = nil
                apply(states, model: model, at: now)
                try retire(model: model)
                publish()
                return CommandOutcome(version: nil, previous: previous, message: "model '\(model)': alias '\(alias)' removed (was version \(previous))", eventID: eventID)
            }
            let key = try existingKey(model: model, version: version)
            if let state = records[key]?.state, !state.isServable && state != .retired {
                throw RegistryError(.conflict, "model '\(model)' version \(version) is \(state.rawValue); an alias must point at a version that can serve")
            }
            let eventID = try setAliasLocked(model: model, alias: alias, version: version, actor: actor, reason: reason)
            return CommandOutcome(version: version, previous: previous, message: "model '\(model)': alias '\(alias)' -> version \(version)", eventID: eventID)
        }
    }

    /// Sets a weighted split of the model's unpinned traffic (version to percent, summing to 100),
    /// or ends it (`weights` nil). Every version in it must be loaded.
    public func setSplit(model: String, weights: [Int: Int]?, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        try onQueue(atomically: "split") { () throws(RegistryError) -> CommandOutcome in
            guard records.keys.contains(where: { $0.model == model }) else { throw RegistryError(.notFound, "model '\(model)' not found") }
            let previous = splits[model]
            if let active = rollouts[model], active.state.isActive {
                throw RegistryError(.conflict, "a rollout of version \(active.version) controls model '\(model)''s split; pause or abort it first")
            }
            guard let weights else {
                guard previous != nil else { throw RegistryError(.notFound, "model '\(model)' has no split in force") }
                let id = try endSplit(model: model, actor: actor, reason: reason)
                return CommandOutcome(version: aliases[model]?["production"], previous: nil,
                                      message: "model '\(model)': split ended; production serves all unpinned traffic", eventID: id)
            }
            if let problem = TrafficSplit.validate(weights) { throw RegistryError(.invalidArgument, problem) }
            for version in weights.keys.sorted() {
                let key = try existingKey(model: model, version: version)
                guard loaded[key] != nil else {
                    throw RegistryError(.conflict, "model '\(model)' version \(version) is \(records[key]!.state.rawValue), not loaded; a split needs loaded versions")
                }
            }
            let description = RouteSpec.describe(weights)
            let eventID = try catalog.setRoute(model: model, spec: RouteSpec(split: weights, shadow: shadows[model]).text,
                                               event: EventDraft(actor: actor, action: "split", model: model, version: nil,
                                                                 before: previous.map(RouteSpec.describe), after: description, reason: reason))
            splits[model] = weights
            publish()
            return CommandOutcome(version: nil, previous: nil, message: "model '\(model)': traffic split \(description)", eventID: eventID)
        }
    }

    /// Ends a model's split, if any, recording it. Runs on the queue.
    @discardableResult
    func endSplit(model: String, actor: String, reason: String) throws(RegistryError) -> Int64? {
        guard let previous = splits[model] else { return nil }
        let id = try catalog.setRoute(model: model, spec: RouteSpec(split: nil, shadow: shadows[model]).text,
                                      event: EventDraft(actor: actor, action: "split", model: model, version: nil,
                                                        before: RouteSpec.describe(previous), after: nil, reason: reason))
        splits[model] = nil
        publish()
        return id
    }

    /// Mirrors `percent` of the model's routed requests to `version`, off the client's path, or
    /// ends the shadow (`version` nil). The version must be loaded, must not be production, and
    /// must accept production's inputs; it is marked `shadow` while mirrored.
    public func setShadow(model: String, version: Int?, percent: Int, actor: String, reason: String) throws(RegistryError) -> CommandOutcome {
        try onQueue(atomically: "shadow") { () throws(RegistryError) -> CommandOutcome in
            guard records.keys.contains(where: { $0.model == model }) else { throw RegistryError(.notFound, "model '\(model)' not found") }
            guard let version else {
                guard shadows[model] != nil else { throw RegistryError(.notFound, "model '\(model)' has no shadow in force") }
                let id = try endShadow(model: model, actor: actor, reason: reason)
                return CommandOutcome(version: nil, previous: nil, message: "model '\(model)': shadow ended", eventID: id)
            }
            guard (1...100).contains(percent) else {
                throw RegistryError(.invalidArgument, "shadow percent \(percent) is outside 1...100")
            }
            let key = try existingKey(model: model, version: version)
            guard let candidate = loaded[key], records[key]!.state.isServable else {
                throw RegistryError(.conflict, "model '\(model)' version \(version) is \(records[key]!.state.rawValue), not loaded; a shadow needs a loaded version")
            }
            let production = aliases[model]?["production"]
            if production == version {
                throw RegistryError(.conflict, "model '\(model)' version \(version) is production: it already answers the requests a shadow would mirror")
            }
            if let production, let current = loaded[Key(model: model, version: production)],
               let mismatch = SignatureCompatibility.mismatch(current: current.servable.signature.inputs, candidate: candidate.servable.signature.inputs) {
                throw RegistryError(.conflict, "model '\(model)' version \(version) cannot shadow production version \(production): \(mismatch)")
            }
            let previous = shadows[model]
            var states: [(version: Int, state: VersionState, reason: String)] = []
            if let previous, previous.version != version, records[Key(model: model, version: previous.version)]?.state == .shadow {
                states.append((previous.version, .ready, "no longer the shadow (version \(version) is)"))
            }
            if [.ready, .candidate].contains(records[key]!.state) {
                states.append((version, .shadow, "mirroring \(percent)% of requests"))
            }
            let spec = ShadowSpec(version: version, percent: percent)
            let now = clock.now()
            let eventID = try catalog.setRoute(model: model, spec: RouteSpec(split: splits[model], shadow: spec).text, states: states, at: now,
                                               event: EventDraft(actor: actor, action: "shadow", model: model, version: version,
                                                                 before: previous?.description, after: spec.description, reason: reason))
            apply(states, model: model, at: now)
            shadows[model] = spec
            mirror.configure(model: model, version: version, percent: percent)
            publish()
            return CommandOutcome(version: version, previous: previous?.version,
                                  message: "model '\(model)': \(percent)% of requests mirrored to version \(version)", eventID: eventID)
        }
    }

    /// Ends a model's shadow, if any, recording it. Runs on the queue.
    @discardableResult
    func endShadow(model: String, actor: String, reason: String) throws(RegistryError) -> Int64? {
        guard let previous = shadows[model] else { return nil }
        var states: [(version: Int, state: VersionState, reason: String)] = []
        if records[Key(model: model, version: previous.version)]?.state == .shadow {
            states.append((previous.version, .ready, "shadow ended"))
        }
        let now = clock.now()
        let id = try catalog.setRoute(model: model, spec: RouteSpec(split: splits[model], shadow: nil).text, states: states, at: now,
                                      event: EventDraft(actor: actor, action: "shadow", model: model, version: previous.version,
                                                        before: previous.description, after: nil, reason: reason))
        apply(states, model: model, at: now)
        shadows[model] = nil
        mirror.configure(model: model, version: nil, percent: 0)
        publish()
        return id
    }

    /// Mirrors in memory the state changes just committed with a command, stamped `now` as the
    /// catalog stamped them.
    func apply(_ states: [(version: Int, state: VersionState, reason: String)], model: String, at now: Double) {
        for change in states {
            records[Key(model: model, version: change.version)]?.state = change.state
            records[Key(model: model, version: change.version)]?.reason = change.reason
            records[Key(model: model, version: change.version)]?.updatedAt = now
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

    func existingKey(model: String, version: Int) throws(RegistryError) -> Key {
        let key = Key(model: model, version: version)
        guard records[key] != nil else {
            if !records.keys.contains(where: { $0.model == model }) { throw RegistryError(.notFound, "model '\(model)' not found") }
            throw RegistryError(.notFound, "model '\(model)' version \(version) not found")
        }
        return key
    }

    func restoreProductionHistory() throws(RegistryError) {
        productionHistory = [:]
        for event in try catalog.events(actions: ["promote", "rollback"], limit: Int.max) {
            guard let model = event.draft.model, let version = event.draft.after.flatMap({ Int($0) }) else { continue }
            ProductionHistory.record(action: event.draft.action, version: version, in: &productionHistory[model, default: []])
        }
    }

    /// Alias names: a letter, then letters, digits, `-` or `_`; at most 64.
    static func isValidAlias(_ name: String) -> Bool {
        guard let first = name.utf8.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), name.utf8.count <= 64 else { return false }
        return name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }
    }

    /// Every model's status for the control API, read on the queue.
    public func snapshot() -> (models: [ModelStatus], splits: [String: [Int: Int]], rollouts: [String: RolloutRecord]) {
        queue.sync {
            let models = Set(records.keys.map(\.model)).union(aliases.keys)
            let statuses = models.sorted().map { model in
                ModelStatus(
                    name: model,
                    versions: records.filter { $0.key.model == model }.sorted { $0.key < $1.key }.map(\.value),
                    aliases: aliases[model] ?? [:],
                    loadedVersions: Set(loaded.keys.filter { $0.model == model }.map(\.version)))
            }
            return (statuses, splits, rollouts)
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
