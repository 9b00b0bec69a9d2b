import Foundation
import Glibc
import Wire

// The commands that read the registry's state: status, list, versions, show.
extension Command {
    /// `registryctl status [--watch]`: the daemon and every model.
    static func status() -> Command {
        Command(
            "status", abstract: "Show the daemon and every model: versions, states, aliases, traffic, rollouts and shadows.",
            discussion: "With --watch it redraws every --interval seconds (default 2) until interrupted, and goes on\nshowing why when the daemon cannot be reached (during a restart, say).",
            options: [OptionSpec(long: "watch", short: "w", help: "Refresh until interrupted (Ctrl-C)."),
                      OptionSpec(long: "interval", value: "seconds", help: "Seconds between refreshes with --watch (default: 2)."),
                      OptionSpec(long: "count", value: "n", help: "With --watch, stop after n refreshes.")]
        ) { invocation, context in
            let watch = invocation.flag("watch")
            var interval = 2.0
            if let text = invocation.option("interval") {
                guard let value = Double(text), value >= 0.1, value <= 3600 else {
                    throw UsageError(message: "--interval '\(text)' is not a number of seconds in 0.1...3600", command: currentCommand!)
                }
                interval = value
            }
            var count: Int?
            if let text = invocation.option("count") {
                guard let value = Int(text), value > 0 else { throw UsageError(message: "--count '\(text)' is not a positive integer", command: currentCommand!) }
                count = value
            }
            guard watch || (invocation.option("interval") == nil && count == nil) else {
                throw UsageError(message: "--interval and --count go with --watch", command: currentCommand!)
            }
            guard watch else {
                context.print(try statusReport(context))
                return
            }
            let terminal = isatty(STDOUT_FILENO) == 1
            var frame = 0
            while count.map({ frame < $0 }) ?? true {
                if frame > 0 { usleep(useconds_t(interval * 1_000_000)) }
                frame += 1
                var text: String
                do {
                    text = try statusReport(context)
                } catch {
                    text = "cannot show the status: \((error as? CommandFailure)?.message ?? "\(error)")\n(retrying every \(interval) s)"
                }
                let stamp = APICoding.time(Date().timeIntervalSince1970)
                // On a terminal, redraw in place; into a pipe or file, one frame after another.
                context.print((terminal ? "\u{1B}[H\u{1B}[2J" : (frame > 1 ? "\n" : "")) + "registryctl status --watch: \(stamp), every \(interval) s\n" + text)
            }
        }
    }

    /// `registryctl list`: the models.
    static func list() -> Command {
        Command("list", abstract: "List the models.") { invocation, context in
            let (models, raw) = try context.client.call(ControlEndpoints.models)
            context.show(raw) {
                table([["MODEL", "PRODUCTION", "VERSIONS", "LOADED", "SPLIT"]] + models.map { m in
                    [m.name, m.production.map(String.init) ?? "-", String(m.versions.count), String(m.versions.filter(\.loaded).count), splitText(m.split)]
                })
            }
        }
    }

    /// `registryctl versions MODEL`: a model's versions.
    static func versions() -> Command {
        Command("versions", abstract: "List a model's versions with their state, hash and traffic.",
                               arguments: [ArgumentSpec(name: "model", help: "The model's name.")]) { invocation, context in
            let model = invocation.arguments[0]
            let (info, raw) = try context.client.call(ControlEndpoints.model, [.model: model])
            context.show(raw) { table(versionRows(info)) }
        }
    }

    /// `registryctl show MODEL[@VERSION]`: one version in detail.
    static func show() -> Command {
        Command("show", abstract: "Show one version in detail: hash, state, signature, manifest.",
                           arguments: [ArgumentSpec(name: "model[@version]", help: "The model, and a version (default: production).")]) { invocation, context in
            let (model, pinned) = try parseModelRef(invocation.arguments[0], currentCommand!)
            var version = pinned
            if version == nil {
                let (info, _) = try context.client.call(ControlEndpoints.model, [.model: model])
                guard let production = info.production else { throw CommandFailure(message: "model '\(model)' has no production version; name one as \(model)@VERSION") }
                version = production
            }
            let (detail, raw) = try context.client.call(ControlEndpoints.version, [.model: model, .version: String(version!)])
            context.show(raw) {
                let v = detail.info
                var rows: [[String]] = [
                    ["model", detail.model], ["version", String(v.version)], ["state", v.state.rawValue], ["file", fileText(v.file)], ["reason", v.reason.isEmpty ? "-" : v.reason],
                    ["loaded", v.loaded ? "yes" : "no"], ["aliases", v.aliases.isEmpty ? "-" : v.aliases.joined(separator: ",")],
                    ["traffic", String(format: "%.0f%%", v.traffic * 100)], ["sha256", v.sha256 ?? "-"], ["size", v.size.map { "\($0) bytes" } ?? "-"],
                    ["path", v.path], ["signature", v.signature.rawValue + (v.signatureKey.map { " (key \($0))" } ?? "")],
                    ["first seen", APICoding.time(v.firstSeen)], ["updated", APICoding.time(v.updatedAt)],
                ]
                for (label, tensors) in [("input", detail.inputs), ("output", detail.outputs)] {
                    for t in tensors ?? [] { rows.append([label, "\(t.name) \(t.datatype) [\(t.shape.map(String.init).joined(separator: ","))]"]) }
                }
                for step in detail.steps ?? [] { rows.append(["step", step.summary]) }
                if let estimate = detail.memoryEstimateBytes {
                    rows.append(["memory", String(format: "estimate %.1f MiB, measured %@", Double(estimate) / 1_048_576,
                                                  detail.memoryMeasuredBytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "-")])
                }
                if let manifest = detail.manifest { rows.append(["manifest", manifest]) }
                return rows.map { $0[0].padding(toLength: 11, withPad: " ", startingAt: 0) + " " + $0[1] }.joined(separator: "\n")
            }
        }
    }
}

/// The daemon and every model, as `registryctl status` prints it (the JSON with `--json`).
func statusReport(_ context: Context) throws -> String {
    let (info, rawInfo) = try context.client.call(ControlEndpoints.status)
    let (models, rawModels) = try context.client.call(ControlEndpoints.models)
    if context.json {
        return "{\"daemon\":\(String(decoding: rawInfo, as: UTF8.self)),\"models\":\(String(decoding: rawModels, as: UTF8.self))}"
    }
    var out = "registryd \(info.version), pid \(info.pid), up \(Int(info.uptimeSeconds)) s; \(info.models) models, \(info.loadedVersions) versions loaded\n"
    out += "model root \(info.modelRoot); catalog \(info.database)\n"
    for model in models {
        out += "\n\(model.name): production \(model.production.map(String.init) ?? "none")" + (model.split.map { "; split \(splitText($0))" } ?? "") + "\n"
        out += table(versionRows(model)).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
        if let rollout = model.rollout {
            if rollout.state.isActive {
                out += describeRollout(rollout).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
            } else {
                out += "  last rollout: version \(rollout.version) \(rollout.state.rawValue.replacingOccurrences(of: "_", with: " ")) at step \(rollout.step) of \(rollout.steps.count)\n"
            }
        }
        if let shadow = model.shadow { out += "  shadow: " + describeShadow(shadow) + "\n" }
    }
    return out
}

/// The `file` row of `show`: what is on disk under the version's number.
func fileText(_ file: ArtifactFileName?) -> String {
    switch file {
    case .changed: "changed on disk: not the admitted bytes (quarantined); see the reason"
    case .missing: "missing"
    case .present: "present (the admitted bytes)"
    case .unrecognized(let text): text
    case nil: "-"
    }
}
