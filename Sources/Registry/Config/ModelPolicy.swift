import Foundation

/// What registryd does with one model's versions: `registry.d/models/<model>.json`.
public struct ModelPolicy: Sendable, Equatable {
    /// What a newly admitted version becomes when the model already has a production version.
    /// The first version of a model always becomes production: something must serve.
    public enum OnNewVersion: String, Sendable, CaseIterable {
        /// Loaded and ready; an operator promotes it.
        case ready
        /// Loaded and given the `candidate` alias.
        case candidate
        /// Promoted to production at once (hot reload).
        case live
    }

    public var onNewVersion: OnNewVersion
    /// How many previous production versions stay loaded, for instant rollback.
    public var keepPrevious: Int
    /// Whether every version must carry a valid signature from a trusted key.
    public var requireSignature: Bool

    public static let `default` = ModelPolicy(onNewVersion: .ready, keepPrevious: 1, requireSignature: false)

    public init(onNewVersion: OnNewVersion, keepPrevious: Int, requireSignature: Bool) {
        self.onNewVersion = onNewVersion
        self.keepPrevious = keepPrevious
        self.requireSignature = requireSignature
    }

    public static func parse(file: String, data: Data, trustedKeys: [String: String]) throws(RegistryError) -> ModelPolicy {
        var r = try ConfigReader(file: file, data: data)
        var policy = ModelPolicy.default
        if let on = try r.string("on_new_version", oneOf: OnNewVersion.allCases.map(\.rawValue)) {
            policy.onNewVersion = OnNewVersion(rawValue: on)!
        }
        policy.keepPrevious = try r.int("keep_previous", in: 0...64) ?? policy.keepPrevious
        policy.requireSignature = try r.bool("require_signature") ?? false
        try r.finish()
        if policy.requireSignature && trustedKeys.isEmpty {
            throw RegistryError(.invalidConfiguration, "\(file): key 'require_signature' is true but registryd.json lists no trusted_keys")
        }
        return policy
    }
}

/// The rule for model names: they become directory names, URL path segments and log fields.
public enum ModelName {
    public static let rule = "1 to 64 characters: letters, digits, '_', '-', '.', not starting with '.' or '-'"

    public static func isValid(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count), let first = name.utf8.first,
              first != UInt8(ascii: ".") && first != UInt8(ascii: "-") else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
        }
    }
}
