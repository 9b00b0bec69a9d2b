import Foundation

/// How a weighted split maps requests to versions: a pure function of the weights.
///
/// Requests with a routing key hash (FNV-1a, 64-bit) to one of 10,000 buckets, so the same key
/// always lands in the same bucket. Arms take consecutive bucket ranges, the newest version
/// first: raising the newest version's (the canary's) share only widens its range at the
/// expense of the others, so keys move into the canary and never out of it.
public enum TrafficSplit {
    public static let buckets = 10_000

    /// The arms in bucket order (newest version first), each with its exclusive upper bucket.
    public static func layout(_ weights: [Int: Int]) -> [(version: Int, upperBucket: Int)] {
        var upper = 0
        return weights.filter { $0.value > 0 }.sorted { $0.key > $1.key }.map { version, percent in
            upper += percent * (buckets / 100)
            return (version, upper)
        }
    }

    /// The bucket of a routing key.
    public static func bucket(forKey key: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return Int(hash % UInt64(buckets))
    }

    /// Checks a split request: versions and weights (whole percents) that sum to 100.
    public static func validate(_ weights: [Int: Int]) -> String? {
        if weights.isEmpty { return "a split needs at least one VERSION=WEIGHT" }
        if let bad = weights.first(where: { $0.value < 0 || $0.value > 100 }) {
            return "weight \(bad.value) of version \(bad.key) is outside 0...100"
        }
        let total = weights.values.reduce(0, +)
        if total != 100 { return "weights must sum to 100, they sum to \(total)" }
        return nil
    }
}

/// A model's stored route (the `routes` table's `spec`):
/// `{"split": {"3": 90, "4": 10}, "shadow": {"version": 5, "percent": 20}}`, either part optional.
public struct RouteSpec: Sendable, Equatable {
    public var split: [Int: Int]?
    public var shadow: ShadowSpec?

    public init(split: [Int: Int]?, shadow: ShadowSpec? = nil) {
        self.split = split
        self.shadow = shadow
    }

    public static func parse(_ text: String) -> RouteSpec? {
        guard let data = text.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        var spec = RouteSpec(split: nil)
        if let split = object["split"] as? [String: Any] {
            var weights: [Int: Int] = [:]
            for (key, value) in split {
                guard let version = Int(key), let weight = (value as? NSNumber)?.intValue else { return nil }
                weights[version] = weight
            }
            spec.split = weights
        }
        if let shadow = object["shadow"] as? [String: Any] {
            guard let version = (shadow["version"] as? NSNumber)?.intValue, let percent = (shadow["percent"] as? NSNumber)?.intValue else { return nil }
            spec.shadow = ShadowSpec(version: version, percent: percent)
        }
        return spec
    }

    /// The stored text; nil when there is nothing beyond production (the row is deleted).
    public var text: String? {
        var parts: [String] = []
        if let split {
            let pairs = split.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }
            parts.append("\"split\":{" + pairs.joined(separator: ",") + "}")
        }
        if let shadow {
            parts.append("\"shadow\":{\"version\":\(shadow.version),\"percent\":\(shadow.percent)}")
        }
        return parts.isEmpty ? nil : "{" + parts.joined(separator: ",") + "}"
    }

    /// `3=90,4=10`, as events record a split.
    public static func describe(_ weights: [Int: Int]) -> String {
        weights.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// The inverse of ``describe(_:)``.
    public static func parseDescription(_ text: String) -> [Int: Int]? {
        var weights: [Int: Int] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=")
            guard parts.count == 2, let version = Int(parts[0]), let weight = Int(parts[1]) else { return nil }
            weights[version] = weight
        }
        return weights.isEmpty ? nil : weights
    }
}

/// The order in which versions held production, kept so that `rollback` without `--to` goes
/// back one step at a time (1 -> 2 -> 3, rollback gives 2, rollback again gives 1).
public enum ProductionHistory {
    /// Updates `stack` for an event: a promotion pushes; a rollback pops the version rolled
    /// back from, then unwinds to the target (or pushes it when it was never production).
    public static func record(action: String, version: Int, in stack: inout [Int]) {
        if action == "rollback" {
            if !stack.isEmpty { stack.removeLast() }
            if let index = stack.lastIndex(of: version) {
                stack.removeSubrange((index + 1)...)
            } else {
                stack.append(version)
            }
        } else if stack.last != version {
            stack.append(version)
        }
    }

    /// The version a rollback goes to: the one before the current production.
    public static func previous(_ stack: [Int], current: Int) -> Int? {
        stack.reversed().first { $0 != current }
    }
}

/// A shadow: `percent` of a model's routed requests mirrored to `version`.
public struct ShadowSpec: Sendable, Equatable {
    public var version: Int
    public var percent: Int

    public init(version: Int, percent: Int) {
        self.version = version
        self.percent = percent
    }

    /// `5@20%`, as events record a shadow.
    public var description: String { "\(version)@\(percent)%" }
}
