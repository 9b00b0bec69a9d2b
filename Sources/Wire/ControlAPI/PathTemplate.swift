/// A path with named parameters, such as `/v1/models/{model}/versions/{version}`.
///
/// It matches a request target, giving each parameter percent-decoded, and renders a target from
/// parameter values, percent-escaping each. Control API paths are escaped and unescaped here and
/// nowhere else, so that a model or alias name with a space, a `%` or a `/` in it reaches the
/// daemon as the one segment it was on the client.
public struct PathTemplate: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter(PathParameter)
    }

    public let segments: [Segment]

    /// Parses `/literal/{parameter}/...`. A malformed template is a bug in the table: it traps.
    public init(_ text: String) {
        precondition(text.hasPrefix("/"), "path template '\(text)' does not start with '/'")
        segments = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { part in
            precondition(!part.isEmpty, "path template '\(text)' has an empty segment")
            if part.hasPrefix("{") && part.hasSuffix("}") {
                guard let parameter = PathParameter(rawValue: String(part.dropFirst().dropLast())) else {
                    preconditionFailure("path template '\(text)' names an unknown parameter \(part)")
                }
                return .parameter(parameter)
            }
            precondition(part.allSatisfy { !"{}%?".contains($0) }, "path template '\(text)' has a malformed segment '\(part)'")
            return .literal(String(part))
        }
        let names = parameters
        precondition(Set(names).count == names.count, "path template '\(text)' names a parameter twice")
    }

    public init(stringLiteral text: String) {
        self.init(text)
    }

    /// The parameters, in path order.
    public var parameters: [PathParameter] {
        segments.compactMap { if case .parameter(let p) = $0 { p } else { nil } }
    }

    public var description: String {
        "/" + segments.map { segment in
            switch segment {
            case .literal(let text): text
            case .parameter(let parameter): "{\(parameter.rawValue)}"
            }
        }.joined(separator: "/")
    }

    // MARK: Matching

    /// The parameters, decoded, if `target`'s path matches the whole template; nil otherwise.
    /// `target` is the request target as sent (still escaped; a query is ignored).
    public func match(_ target: String) -> PathParameters? {
        match(segments: PathTemplate.segments(of: target), prefix: false)
    }

    /// The parameters if `target`'s path begins with the template (and may go on).
    public func matchPrefix(_ target: String) -> PathParameters? {
        match(segments: PathTemplate.segments(of: target), prefix: true)
    }

    func match(segments parts: [String], prefix: Bool) -> PathParameters? {
        guard prefix ? parts.count >= segments.count : parts.count == segments.count else { return nil }
        var parameters: PathParameters = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let text):
                guard part == text else { return nil }
            case .parameter(let name):
                parameters[name] = part
            }
        }
        return parameters
    }

    /// A target's path segments, each percent-decoded. The path is split before it is decoded, so
    /// that an escaped `/` stays inside its segment. Empty segments are skipped (`/v1//models` is
    /// `/v1/models`), and a segment whose escapes are malformed is kept as sent.
    public static func segments(of target: String) -> [String] {
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return path.split(separator: "/").map { HTTPRequest.percentDecoded(String($0)) ?? String($0) }
    }

    /// Whether two templates can match the same path (the same length, and at each place a
    /// parameter or the same literal).
    func overlaps(_ other: PathTemplate) -> Bool {
        segments.count == other.segments.count && zip(segments, other.segments).allSatisfy { a, b in
            if case .literal(let x) = a, case .literal(let y) = b { return x == y }
            return true
        }
    }

    // MARK: Rendering

    /// The path with each parameter's value escaped into its segment. Every parameter of the
    /// template must be given, and no other: anything else is a bug in the caller.
    public func render(_ parameters: PathParameters) -> String {
        precondition(Set(parameters.names) == Set(self.parameters),
                     "path \(self) takes \(self.parameters.map(\.rawValue)), given \(parameters.names.map(\.rawValue))")
        return "/" + segments.map { segment in
            switch segment {
            case .literal(let text): text
            case .parameter(let name): PathTemplate.escape(parameters[name]!)
            }
        }.joined(separator: "/")
    }

    /// Percent-escapes every byte of `text`'s UTF-8 but the unreserved characters of RFC 3986
    /// (ASCII letters and digits, `-._~`), for a path segment or a query name or value.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hexDigits[Int(byte >> 4)])
                out.unicodeScalars.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return out
    }

    private static let hexDigits = Array("0123456789ABCDEF".unicodeScalars)
}

/// The parameters a control API path template can name.
public enum PathParameter: String, Sendable, Hashable, CaseIterable {
    case model, version, alias, command
}

/// A path's parameter values, decoded: what a match gives the daemon, and what a client gives
/// to render a path.
public struct PathParameters: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    private var values: [PathParameter: String]

    public init(dictionaryLiteral elements: (PathParameter, String)...) {
        values = Dictionary(elements, uniquingKeysWith: { _, last in last })
    }

    public subscript(_ name: PathParameter) -> String? {
        get { values[name] }
        set { values[name] = newValue }
    }

    /// The value of a parameter the matched template names; its absence is a bug in the caller.
    public subscript(required name: PathParameter) -> String {
        guard let value = values[name] else { preconditionFailure("no path parameter '\(name.rawValue)' in this match") }
        return value
    }

    /// The parameters given, in declaration order.
    public var names: [PathParameter] {
        PathParameter.allCases.filter { values[$0] != nil }
    }
}
