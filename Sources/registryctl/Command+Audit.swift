import Foundation
import Glibc
import Wire

// The commands that check the registry: verify (artifacts) and history (the audit trail).
extension Command {
    /// `registryctl verify [MODEL]`: re-hash the artifacts.
    static func verify() -> Command {
        Command(
            "verify", abstract: "Re-hash every recorded artifact (or MODEL's) against the catalog; changed ones are quarantined.",
            arguments: [ArgumentSpec(name: "model", help: "Only this model.", optional: true)]
        ) { invocation, context in
            let (report, raw) = try context.client.call(ControlEndpoints.verifyArtifacts, query: [("model", invocation.arguments.first)], body: EmptyBody())
            context.show(raw) {
                table([["MODEL", "VERSION", "RESULT", "SHA256"]] + report.items.map { [$0.model, String($0.version), $0.ok ? "ok" : ($0.problem ?? "failed"), String(($0.sha256 ?? "-").prefix(12))] })
                    + "\n\(report.checked) checked, \(report.failed) failed"
            }
            if report.failed > 0 { throw CommandFailure(message: "\(report.failed) artifact(s) failed verification") }
        }
    }

    /// `registryctl history [MODEL]`: the audit trail, its chain check, and what served when.
    static func history() -> Command {
        Command(
            "history", abstract: "Show the audit trail; --verify checks its hash chain; --at T says what served MODEL at T.",
            discussion: "Times are ISO 8601 (2026-11-23T14:03:00Z) or seconds since 1970.",
            arguments: [ArgumentSpec(name: "model", help: "Only this model's events.", optional: true)],
            options: [OptionSpec(long: "since", value: "time", help: "Events at or after this time."),
                      OptionSpec(long: "until", value: "time", help: "Events at or before this time."),
                      OptionSpec(long: "action", value: "name", help: "Only these actions (promote,rollback,...)."),
                      OptionSpec(long: "limit", value: "n", help: "At most the newest N events (default 1000)."),
                      OptionSpec(long: "at", value: "time", help: "What served MODEL at this time."),
                      OptionSpec(long: "verify", help: "Walk the hash chain and report edited or deleted rows.")]
        ) { invocation, context in
            if invocation.flag("verify") {
                let (report, raw) = try context.client.call(ControlEndpoints.verifyEvents)
                context.show(raw) {
                    report.intact ? "audit trail intact: \(report.events) events, hash chain verified"
                        : "AUDIT TRAIL BROKEN (\(report.events) events):\n" + report.problems.map { "  - " + $0 }.joined(separator: "\n")
                }
                if !report.intact { throw CommandFailure(message: "the audit trail has been tampered with") }
                return
            }
            if let at = invocation.option("at") {
                guard let model = invocation.arguments.first else { throw UsageError(message: "--at needs a <model>", command: currentCommand!) }
                let (served, raw) = try context.client.call(ControlEndpoints.servedAt, [.model: model], query: [("at", at)])
                context.show(raw) {
                    guard let version = served.version else { return "model '\(model)' had no production version at \(served.time)" }
                    var line = "at \(served.time), model '\(model)' was served by version \(version)"
                    if let split = served.split { line += " with split \(splitText(split))" }
                    if let since = served.since { line += " (since \(APICoding.time(since)), event \(served.eventID.map(String.init) ?? "-"))" }
                    return line
                }
                return
            }
            let query = [("model", invocation.arguments.first)] + ["since", "until", "action", "limit"].map { ($0, invocation.option($0)) }
            let (events, raw) = try context.client.call(ControlEndpoints.events, query: query)
            context.show(raw) {
                table([["ID", "TIME", "ACTOR", "ACTION", "MODEL", "VERSION", "BEFORE", "AFTER", "REASON"]] + events.map { e in
                    [String(e.id), e.time, e.actor, e.action, e.model ?? "-", e.version.map(String.init) ?? "-", e.before ?? "-", e.after ?? "-", e.reason]
                })
            }
        }
    }
}
