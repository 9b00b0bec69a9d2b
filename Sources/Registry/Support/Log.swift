import Foundation
import Synchronization

/// A small structured logger: one line per event, a fixed message and `key=value` metadata with
/// dotted keys (`model.name`), readable in journald; or one JSON object per line.
///
/// Thread-safety: lines are written whole under a lock, from any thread.
public final class Log: Sendable {
    public enum Level: Int, Sendable, Comparable, CaseIterable {
        case debug, info, notice, warning, error

        public init?(name: String) {
            guard let level = Level.allCases.first(where: { "\($0)" == name }) else { return nil }
            self = level
        }

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    public enum Format: String, Sendable { case text, json }

    private struct State {
        var level: Level
        var format: Format
    }
    private let state: Mutex<State>
    private let sink: @Sendable (String) -> Void

    public init(level: Level = .info, format: Format = .text, sink: (@Sendable (String) -> Void)? = nil) {
        state = Mutex(State(level: level, format: format))
        self.sink = sink ?? { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    public func setLevel(_ level: Level) { state.withLock { $0.level = level } }

    /// Changes the level and the format at once (a configuration reload).
    public func configure(level: Level, format: Format) {
        state.withLock { $0 = State(level: level, format: format) }
    }

    public func log(_ level: Level, _ message: StaticString, _ metadata: KeyValuePairs<String, CustomStringConvertible> = [:]) {
        // Filtered before the metadata is turned into text.
        guard level >= state.withLock({ $0.level }) else { return }
        log(level, message, pairs: metadata.map { ($0.key, "\($0.value)") })
    }

    /// The same line with its metadata as a list (a command's log lines, kept until it commits).
    public func log(_ level: Level, _ message: StaticString, pairs metadata: [(String, String)]) {
        let (minimum, format) = state.withLock { ($0.level, $0.format) }
        guard level >= minimum else { return }
        let time = ISO8601DateFormatter.string(
            from: Date(), timeZone: .gmt, formatOptions: [.withInternetDateTime, .withFractionalSeconds])
        switch format {
        case .text:
            var line = "\(time) \(level) \(message)"
            for (key, value) in metadata { line += " \(key)=\(Log.quoted(value))" }
            sink(line)
        case .json:
            var object: [String: String] = ["time": time, "level": "\(level)", "message": "\(message)"]
            for (key, value) in metadata { object[key] = value }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            sink(String(decoding: data, as: UTF8.self))
        }
    }

    public func debug(_ m: StaticString, _ md: KeyValuePairs<String, CustomStringConvertible> = [:]) { log(.debug, m, md) }
    public func info(_ m: StaticString, _ md: KeyValuePairs<String, CustomStringConvertible> = [:]) { log(.info, m, md) }
    public func notice(_ m: StaticString, _ md: KeyValuePairs<String, CustomStringConvertible> = [:]) { log(.notice, m, md) }
    public func warning(_ m: StaticString, _ md: KeyValuePairs<String, CustomStringConvertible> = [:]) { log(.warning, m, md) }
    public func error(_ m: StaticString, _ md: KeyValuePairs<String, CustomStringConvertible> = [:]) { log(.error, m, md) }

    /// Values with spaces, quotes or `=` are quoted so that a line splits back unambiguously.
    static func quoted(_ value: String) -> String {
        if !value.isEmpty, !value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) {
            return value
        }
        var escaped = "\""
        for c in value {
            switch c {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.append(c)
            }
        }
        return escaped + "\""
    }
}
