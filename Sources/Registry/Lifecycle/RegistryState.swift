/// A version's key: its model and its number.
struct VersionKey: Hashable, Comparable, CustomStringConvertible, Sendable {
    var model: String
    var version: Int
    static func < (a: VersionKey, b: VersionKey) -> Bool { (a.model, a.version) < (b.model, b.version) }
    var description: String { "\(model) version \(version)" }
}

/// What the registry has decided, as one value: every recorded version, what is loaded, the
/// aliases, the routes (splits and shadows), each model's production history and its latest
/// rollout.
///
/// Invariant: the value in force (held by ``Lifecycle`` on its queue) agrees with the catalog.
/// A command never changes it in place: it works on a copy (``CommandDraft``) that also lists the
/// catalog writes recording each change; the owner commits the writes, then swaps the copy in.
/// A failed commit drops the copy, so nothing is ever undone and memory never runs ahead of the
/// catalog.
struct RegistryState: Sendable {
    var records: [VersionKey: VersionRecord] = [:]
    /// What serves, by version: residency is a fact of this process, not of the catalog.
    var loaded: [VersionKey: LoadedVersion] = [:]
    var aliases: [String: [String: Int]] = [:]
    /// Weighted splits in force, by model: version to percent.
    var splits: [String: [Int: Int]] = [:]
    /// Shadows in force, by model.
    var shadows: [String: ShadowSpec] = [:]
    /// Each model's production versions in the order they took over, for `rollback`.
    var productionHistory: [String: [Int]] = [:]
    /// The latest rollout of each model.
    var rollouts: [String: RolloutRecord] = [:]
    /// Versions a command loaded and is about to give a role: retention leaves them alone.
    var reserved: Set<VersionKey> = []

    func production(of model: String) -> Int? { aliases[model]?["production"] }

    func isProduction(_ key: VersionKey) -> Bool { aliases[key.model]?["production"] == key.version }

    func knows(model: String) -> Bool { records.keys.contains { $0.model == model } }

    /// The key of a recorded version, or the not-found error that names what is missing.
    func existingKey(model: String, version: Int) throws(RegistryError) -> VersionKey {
        let key = VersionKey(model: model, version: version)
        guard records[key] != nil else {
            if !knows(model: model) { throw RegistryError(.notFound, "model '\(model)' not found") }
            throw RegistryError(.notFound, "model '\(model)' version \(version) not found")
        }
        return key
    }

    /// Versions that something points at: an alias, a split arm, the shadow, or a command that
    /// reserved it.
    func protected(_ model: String) -> Set<Int> {
        Set((aliases[model] ?? [:]).values).union(splits[model].map { Set($0.keys) } ?? []).union(shadows[model].map { [$0.version] } ?? [])
            .union(reserved.filter { $0.model == model }.map(\.version))
    }
}
