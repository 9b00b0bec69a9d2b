import Foundation
import Glibc
import Wire

/// What every command needs: the client, and where and how to print.
struct Context {
    let client: Client
    let json: Bool

    func print(_ text: String) {
        FileHandle.standardOutput.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    /// Prints the API's JSON as it came (`--json`), or the human form.
    func show(_ raw: [UInt8], _ human: () -> String) {
        if json { print(String(decoding: raw, as: UTF8.self)) } else { print(human()) }
    }
}

/// Aligned columns, the first row a header.
func table(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = first.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
        row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }.joined(separator: "\n")
}

func parseVersion(_ text: String, _ command: Command) throws(UsageError) -> Int {
    guard let value = Int(text), value > 0 else { throw UsageError(message: "version '\(text)' is not a positive integer", command: command) }
    return value
}

/// `MODEL` or `MODEL@VERSION`.
func parseModelRef(_ text: String, _ command: Command) throws(UsageError) -> (String, Int?) {
    guard let at = text.firstIndex(of: "@") else { return (text, nil) }
    return (String(text[..<at]), try parseVersion(String(text[text.index(after: at)...]), command))
}

func describe(_ result: ActionResult) -> String {
    var line = result.message
    if result.elapsedMilliseconds > 0 { line += String(format: " [%.2f ms, event %@]", result.elapsedMilliseconds, result.eventID.map(String.init) ?? "-") }
    return line
}

func versionRows(_ model: ModelInfo) -> [[String]] {
    [["VERSION", "STATE", "LOADED", "TRAFFIC", "ALIASES", "SHA256", "SIGNATURE", "REASON"]] + model.versions.map { v in
        [String(v.version), v.state.rawValue + (v.file == .changed ? " (file changed)" : ""), v.loaded ? "yes" : "no", String(format: "%.0f%%", v.traffic * 100), v.aliases.joined(separator: ","),
         String((v.sha256 ?? "-").prefix(12)), v.signature.rawValue, v.reason]
    }
}

func splitText(_ split: [String: Int]?) -> String {
    guard let split else { return "-" }
    return split.sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
}

/// A shadow on one line: its share, its agreement and the latencies.
func describeShadow(_ s: ShadowInfo) -> String {
    var line = "version \(s.version) mirrors \(s.percent)%: \(s.mirrored) mirrored, \(s.dropped) dropped, \(s.failed) failed"
    if let agreement = s.agreement {
        line += String(format: "; top-1 agreement %.2f%% (%d/%d rows", agreement * 100, s.agreedRows, s.comparedRows) + (s.output.map { " of '\($0)'" } ?? "") + ")"
    } else if let diff = s.maxAbsDiff {
        line += String(format: "; max abs difference %.6g over %d rows", diff, s.comparedRows) + (s.output.map { " of '\($0)'" } ?? "")
    } else {
        line += "; nothing compared yet"
    }
    if let shadow = s.shadowMeanSeconds, let primary = s.primaryMeanSeconds {
        line += String(format: "; run time %.3f ms (serving version %.3f ms)", shadow * 1000, primary * 1000)
    }
    return line
}

/// `30s`, `5m`, `1h`, `250ms`, or plain seconds.
func parseDuration(_ text: String) -> Double? {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        if suffix == "s" && text.hasSuffix("ms") { continue }
        guard let value = Double(text.dropLast(suffix.count)), value > 0 else { return nil }
        return value * scale
    }
    guard let value = Double(text), value > 0 else { return nil }
    return value
}

/// A rollout's progress: a bar, the step, the gates and the current window.
func describeRollout(_ r: RolloutInfo) -> String {
    let width = 30
    let filled = r.percent * width / 100
    let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    func window(_ w: RolloutInfo.Window) -> String {
        "\(w.requests) requests, \(w.errors) errors (\(String(format: "%.2f%%", w.errorRate * 100)))" + (w.p99Seconds.map { String(format: ", p99 <= %.1f ms", $0 * 1000) } ?? "")
    }
    return """
    model '\(r.model)': rollout of version \(r.version) against \(r.baseline): \(r.state.rawValue)
    \(bar) \(r.percent)%   step \(r.step) of \(r.steps.count) (\(r.steps.map(String.init).joined(separator: ",")))
    gates: error rate <= \(r.maxErrorRate), p99 <= \(r.maxLatencyRatio) x baseline, at least \(r.minRequests) canary requests; \(Int(r.intervalSeconds)) s per step
    canary:   \(window(r.canary))
    baseline: \(window(r.baselineWindow))
    \(r.note)
    """
}

// MARK: The command tree

let reasonOption = OptionSpec(long: "reason", value: "text", help: "Why: recorded in the audit trail with your uid and pid.")

/// The command tree. Each command is built in `Command+<Topic>.swift`; every control request it
/// sends is built from Wire's `ControlEndpoints` through ``Client/call(_:_:query:body:)``.
/// The order of `subcommands` is the order `registryctl --help` lists them in.
func makeRoot() -> Command {
    Command(
        "registryctl", abstract: "Control registryd, the model registry and lifecycle daemon, over its Unix socket.",
        discussion: "Exit status: 0 on success, 1 when the command fails, 64 for a usage mistake.",
        options: [OptionSpec(long: "version", help: "Show the version.")],
        subcommands: [.status(), .list(), .versions(), .show(), .promote(), .rollback(), .alias(), .split(), .rollout(), .shadow(), .predict(),
                      .verify(), .rescan(), .reload(), .history(), .importModel()])
}

/// The command being run (for usage errors raised inside `run`).
nonisolated(unsafe) var currentCommand: Command?
