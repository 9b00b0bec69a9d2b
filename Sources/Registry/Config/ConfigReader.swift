import Foundation
import Wire

/// Reads one JSON object of a configuration file strictly: every key must be known and of the
/// expected type, and every error names the file, the key and what was expected.
///
/// Use: read each key once, then call ``finish()``, which rejects keys nobody read.
struct ConfigReader {
    let file: String
    /// The dotted path of this object inside the file ("" at the top).
    let prefix: String
    private let object: [String: Any]
    private var read: Set<String> = []

    /// Parses `data` as one JSON object.
    init(file: String, data: Data) throws(RegistryError) {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            throw RegistryError(.invalidConfiguration, "\(file): not valid JSON: \(detail)")
        }
        guard let object = parsed as? [String: Any] else {
            throw RegistryError(.invalidConfiguration, "\(file): expected a JSON object at the top level")
        }
        self.init(file: file, prefix: "", object: object)
    }

    /// Reads `object`, found at the dotted path `prefix` of `file` (a list's element, say).
    init(file: String, prefix: String, object: [String: Any]) {
        self.file = file
        self.prefix = prefix
        self.object = object
    }

    private func name(_ key: String) -> String { prefix.isEmpty ? key : "\(prefix).\(key)" }

    private func fail(_ key: String, expected: String, got value: Any) -> RegistryError {
        RegistryError(.invalidConfiguration, "\(file): key '\(name(key))': expected \(expected), got \(ConfigReader.describe(value))")
    }

    /// JSON true/false: Foundation gives an NSNumber whose type code is "c" (char), which plain
    /// integers never have.
    static func isBoolean(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    static func describe(_ value: Any) -> String {
        switch value {
        case is NSNull: "null"
        case let n as NSNumber where ConfigReader.isBoolean(n): "a boolean"
        case is NSNumber: "a number"
        case is String: "a string"
        case is [Any]: "an array"
        case is [String: Any]: "an object"
        default: "\(type(of: value))"
        }
    }

    private mutating func value(_ key: String) -> Any? {
        read.insert(key)
        guard let value = object[key], !(value is NSNull) else { return nil }
        return value
    }

    mutating func string(_ key: String) throws(RegistryError) -> String? {
        guard let raw = value(key) else { return nil }
        guard let string = raw as? String else { throw fail(key, expected: "a string", got: raw) }
        return string
    }

    mutating func string(_ key: String, oneOf allowed: [String]) throws(RegistryError) -> String? {
        guard let string = try string(key) else { return nil }
        guard allowed.contains(string) else {
            throw RegistryError(
                .invalidConfiguration,
                "\(file): key '\(name(key))': expected one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", ")), got \"\(string)\"")
        }
        return string
    }

    mutating func bool(_ key: String) throws(RegistryError) -> Bool? {
        guard let raw = value(key) else { return nil }
        guard let n = raw as? NSNumber, ConfigReader.isBoolean(n) else {
            throw fail(key, expected: "true or false", got: raw)
        }
        return n.boolValue
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>) throws(RegistryError) -> Int? {
        guard let raw = value(key) else { return nil }
        guard let n = raw as? NSNumber, !ConfigReader.isBoolean(n),
              let int = Int(exactly: n.doubleValue), Double(int) == n.doubleValue
        else { throw fail(key, expected: "an integer", got: raw) }
        guard range.contains(int) else {
            throw RegistryError(
                .invalidConfiguration,
                "\(file): key '\(name(key))': expected an integer from \(range.lowerBound) to \(range.upperBound), got \(int)")
        }
        return int
    }

    mutating func double(_ key: String, in range: ClosedRange<Double>) throws(RegistryError) -> Double? {
        guard let raw = value(key) else { return nil }
        guard let n = raw as? NSNumber, !ConfigReader.isBoolean(n), n.doubleValue.isFinite else {
            throw fail(key, expected: "a number", got: raw)
        }
        guard range.contains(n.doubleValue) else {
            throw RegistryError(
                .invalidConfiguration,
                "\(file): key '\(name(key))': expected a number from \(range.lowerBound) to \(range.upperBound), got \(n.doubleValue)")
        }
        return n.doubleValue
    }

    /// A nested object, read by `body` with the same strictness.
    mutating func object<T>(_ key: String, _ body: (inout ConfigReader) throws(RegistryError) -> T) throws(RegistryError) -> T? {
        guard let raw = value(key) else { return nil }
        guard let nested = raw as? [String: Any] else { throw fail(key, expected: "an object", got: raw) }
        var reader = ConfigReader(file: file, prefix: name(key), object: nested)
        let result = try body(&reader)
        try reader.finish()
        return result
    }

    /// An object whose keys are free (names) and whose values are strings.
    mutating func stringMap(_ key: String) throws(RegistryError) -> [String: String]? {
        guard let raw = value(key) else { return nil }
        guard let nested = raw as? [String: Any] else { throw fail(key, expected: "an object", got: raw) }
        var result: [String: String] = [:]
        for (k, v) in nested {
            guard let s = v as? String else { throw fail("\(key).\(k)", expected: "a string", got: v) }
            result[k] = s
        }
        return result
    }

    /// Any JSON value, untyped (free-form metadata).
    mutating func any(_ key: String) -> Any? { value(key) }

    /// Rejects keys that were never read, suggesting the closest known key.
    func finish() throws(RegistryError) {
        for key in object.keys.sorted() where !read.contains(key) {
            var message = "\(file): unknown key '\(name(key))'"
            if let guess = Suggestion.closest(to: key, among: Array(read)) {
                message += " (did you mean '\(name(guess))'?)"
            }
            throw RegistryError(.invalidConfiguration, message)
        }
    }
}
