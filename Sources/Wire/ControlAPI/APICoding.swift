import Foundation

/// The encoder and decoder both sides use.
public enum APICoding {
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain value types cannot fail.
        return Array(try! encoder.encode(value))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }

    /// A decoding error as one sentence that names the key at fault.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "the body" : "'" + keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + "'"
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing key '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
        case .typeMismatch(let type, let context): return "\(path(context.codingPath)) must be \(describe(type))"
        case .valueNotFound(let type, let context): return "\(path(context.codingPath)) must be \(describe(type)), not null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "the body is not valid JSON" : "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type, is Int32.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        default: "\(type)".hasPrefix("Array") ? "an array" : "an object"
        }
    }

    /// ISO 8601 UTC with milliseconds.
    public static func time(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}

extension APICoding {
    /// Decodes `T` from a JSON object, refusing keys other than `keys`: a misspelt `"froce"`
    /// must be an error, not silently ignored. An empty body decodes as `{}`.
    public static func decodeStrict<T: Decodable>(_ type: T.Type, from bytes: [UInt8], keys: Set<String>) throws(APIDecodingError) -> T {
        let body = bytes.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 } ? Array("{}".utf8) : bytes
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) else {
            throw APIDecodingError(message: "the body is not valid JSON")
        }
        guard let dictionary = object as? [String: Any] else {
            throw APIDecodingError(message: "the body must be a JSON object")
        }
        if let unknown = dictionary.keys.sorted().first(where: { !keys.contains($0) }) {
            throw APIDecodingError(message: "unknown key '\(unknown)'; expected one of: \(keys.sorted().joined(separator: ", "))")
        }
        do {
            return try decode(type, from: body)
        } catch {
            throw APIDecodingError(message: describe(error))
        }
    }
}

/// Why a request body was refused.
public struct APIDecodingError: Error, Sendable, Equatable {
    public var message: String
}

/// `{"error": "..."}`, the body of every failed request.
public struct ErrorBody: Codable, Sendable, Equatable {
    public var error: String

    public init(error: String) {
        self.error = error
    }
}
