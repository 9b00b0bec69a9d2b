import Foundation
import Wire

extension Manifest {
    /// One named slice of an output's last dimension, served as an output of its own.
    ///
    /// A model that answers several questions in one vector (5 skin types, 4 hair types and 5
    /// conditions in 14 logits) is described by one head per question, in the order their
    /// slices lie in the vector. The manifest's own checks (here) are about the heads alone;
    /// whether their sizes add up to the output's last dimension is checked against the model
    /// when it loads (`HeadsServable.check`).
    public struct Head: Sendable, Equatable {
        /// The output's name in the signature; unique among the model's outputs and heads.
        public var name: String
        /// How many elements of the last dimension it takes, from where the previous head ended.
        public var size: Int
        /// Whether the slice is turned into probabilities (a numerically stable softmax over it).
        public var softmax: Bool
        /// Class names, one per element of the slice (or none).
        public var labels: [String]

        public init(name: String, size: Int, softmax: Bool = false, labels: [String] = []) {
            self.name = name
            self.size = size
            self.softmax = softmax
            self.labels = labels
        }
    }

    /// The largest head accepted: far above any classifier's class count, and small enough that
    /// a typo (a size of 1e12) is refused by name instead of failing later as a shape mismatch.
    public static let maximumHeadSize = 1 << 24

    /// Reads `heads`: `{"<output>": [{"name": ..., "size": ..., "softmax": ..., "labels": [...]}, ...]}`.
    /// Every error names the file and the key (`heads.logits[1].size`).
    static func parseHeads(_ value: Any, file: String) throws(RegistryError) -> [String: [Head]] {
        func fail(_ key: String, _ message: String) -> RegistryError {
            RegistryError(.invalidConfiguration, "\(file): key '\(key)': \(message)")
        }
        guard let object = value as? [String: Any] else {
            throw fail("heads", "expected an object of output name to an array of heads, got \(ConfigReader.describe(value))")
        }
        var heads: [String: [Head]] = [:]
        var names: [String: String] = [:]  // head name -> the key that named it first
        for output in object.keys.sorted() {
            guard let list = object[output] as? [Any], !list.isEmpty else {
                throw fail("heads.\(output)", "expected a non-empty array of heads ({\"name\": ..., \"size\": ...}), got \(ConfigReader.describe(object[output]!))")
            }
            var parsed: [Head] = []
            for (index, element) in list.enumerated() {
                let key = "heads.\(output)[\(index)]"
                let head = try parseHead(element, key: key, fail: fail)
                if let first = names[head.name] {
                    throw fail("\(key).name", "head '\(head.name)' is already named by '\(first)'")
                }
                if object[head.name] != nil {
                    throw fail("\(key).name", "'\(head.name)' is an output that heads split; a head needs a name of its own")
                }
                names[head.name] = key
                parsed.append(head)
            }
            heads[output] = parsed
        }
        return heads
    }

    private static func parseHead(_ element: Any, key: String, fail: (String, String) -> RegistryError) throws(RegistryError) -> Head {
        guard let object = element as? [String: Any] else {
            throw fail(key, "expected an object {\"name\": ..., \"size\": ..., \"softmax\": ..., \"labels\": [...]}, got \(ConfigReader.describe(element))")
        }
        let known = ["name", "size", "softmax", "labels"]
        for field in object.keys.sorted() where !known.contains(field) {
            let guess = Suggestion.closest(to: field, among: known).map { " (did you mean '\(key).\($0)'?)" } ?? ""
            throw fail("\(key).\(field)", "unknown key\(guess)")
        }
        guard let name = object["name"] as? String, !name.isEmpty else {
            throw fail("\(key).name", "expected a non-empty string, got \(object["name"].map(ConfigReader.describe) ?? "nothing")")
        }
        guard let number = object["size"] as? NSNumber, !ConfigReader.isBoolean(number),
              let size = Int(exactly: number.doubleValue), (1...maximumHeadSize).contains(size) else {
            throw fail("\(key).size", "expected an integer from 1 to \(maximumHeadSize), got \(object["size"].map(describe) ?? "nothing")")
        }
        var softmax = false
        if let raw = object["softmax"], !(raw is NSNull) {
            guard let flag = raw as? NSNumber, ConfigReader.isBoolean(flag) else {
                throw fail("\(key).softmax", "expected true or false, got \(ConfigReader.describe(raw))")
            }
            softmax = flag.boolValue
        }
        var labels: [String] = []
        if let raw = object["labels"], !(raw is NSNull) {
            guard let list = raw as? [Any], let strings = list as? [String] else {
                throw fail("\(key).labels", "expected an array of strings, got \(ConfigReader.describe(raw))")
            }
            guard strings.count == size else {
                throw fail("\(key).labels", "\(strings.count) names for a head of size \(size); give one name per class")
            }
            labels = strings
        }
        return Head(name: name, size: size, softmax: softmax, labels: labels)
    }

    /// A number as written ("0", "2.5"), anything else as ``ConfigReader/describe(_:)`` says.
    private static func describe(_ value: Any) -> String {
        if let n = value as? NSNumber, !ConfigReader.isBoolean(n) { return "\(n)" }
        return ConfigReader.describe(value)
    }
}
