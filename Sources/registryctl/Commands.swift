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

func reasonBody<T: Encodable>(_ value: T) -> [UInt8] { APICoding.encode(value) }

func describe(_ result: ActionResult) -> String {
    var line = result.message
    if result.elapsedMilliseconds > 0 { line += String(format: " [%.2f ms, event %@]", result.elapsedMilliseconds, result.eventID.map(String.init) ?? "-") }
    return line
}

func versionRows(_ model: ModelInfo) -> [[String]] {
    [["VERSION", "STATE", "LOADED", "TRAFFIC", "ALIASES", "SHA256", "SIGNATURE", "REASON"]] + model.versions.map { v in
        [String(v.version), v.state.rawValue, v.loaded ? "yes" : "no", String(format: "%.0f%%", v.traffic * 100), v.aliases.joined(separator: ","),
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

/// The daemon and every model, as `registryctl status` prints it (the JSON with `--json`).
func statusReport(_ context: Context) throws -> String {
    let (info, rawInfo) = try context.client.call("GET", "/v1/status", as: DaemonInfo.self)
    let (models, rawModels) = try context.client.call("GET", "/v1/models", as: [ModelInfo].self)
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

// MARK: The command tree

let reasonOption = OptionSpec(long: "reason", value: "text", help: "Why: recorded in the audit trail with your uid and pid.")

func makeRoot() -> Command {
    let status = Command(
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

    let reload = Command(
        "reload", abstract: "Make registryd re-read its configuration (as SIGHUP does).",
        discussion: "Model policies, log level and format, trusted keys, the settle window and the memory budget take\neffect at once; keys fixed at start (listeners, catalog, threads) are named and wait for a restart.\nA configuration with an error is refused with the reason, and the one in force stays."
    ) { invocation, context in
        let (result, raw) = try context.client.call("POST", "/v1/reload", body: [], as: ReloadResult.self)
        context.show(raw) {
            var text = result.message
            if !result.changed.isEmpty { text += "\nin force now: " + result.changed.joined(separator: ", ") }
            if !result.restartRequired.isEmpty { text += "\nafter a restart: " + result.restartRequired.joined(separator: ", ") }
            return text
        }
    }

    let list = Command("list", abstract: "List the models.") { invocation, context in
        let (models, raw) = try context.client.call("GET", "/v1/models", as: [ModelInfo].self)
        context.show(raw) {
            table([["MODEL", "PRODUCTION", "VERSIONS", "LOADED", "SPLIT"]] + models.map { m in
                [m.name, m.production.map(String.init) ?? "-", String(m.versions.count), String(m.versions.filter(\.loaded).count), splitText(m.split)]
            })
        }
    }

    let versions = Command("versions", abstract: "List a model's versions with their state, hash and traffic.",
                           arguments: [ArgumentSpec(name: "model", help: "The model's name.")]) { invocation, context in
        let model = invocation.arguments[0]
        let (info, raw) = try context.client.call("GET", "/v1/models/\(escape(model))", as: ModelInfo.self)
        context.show(raw) { table(versionRows(info)) }
    }

    let show = Command("show", abstract: "Show one version in detail: hash, state, signature, manifest.",
                       arguments: [ArgumentSpec(name: "model[@version]", help: "The model, and a version (default: production).")]) { invocation, context in
        let (model, pinned) = try parseModelRef(invocation.arguments[0], currentCommand!)
        var version = pinned
        if version == nil {
            let (info, _) = try context.client.call("GET", "/v1/models/\(escape(model))", as: ModelInfo.self)
            guard let production = info.production else { throw CommandFailure(message: "model '\(model)' has no production version; name one as \(model)@VERSION") }
            version = production
        }
        let (detail, raw) = try context.client.call("GET", "/v1/models/\(escape(model))/versions/\(version!)", as: VersionDetail.self)
        context.show(raw) {
            let v = detail.info
            var rows: [[String]] = [
                ["model", detail.model], ["version", String(v.version)], ["state", v.state.rawValue], ["reason", v.reason.isEmpty ? "-" : v.reason],
                ["loaded", v.loaded ? "yes" : "no"], ["aliases", v.aliases.isEmpty ? "-" : v.aliases.joined(separator: ",")],
                ["traffic", String(format: "%.0f%%", v.traffic * 100)], ["sha256", v.sha256 ?? "-"], ["size", v.size.map { "\($0) bytes" } ?? "-"],
                ["path", v.path], ["signature", v.signature.rawValue + (v.signatureKey.map { " (key \($0))" } ?? "")],
                ["first seen", APICoding.time(v.firstSeen)], ["updated", APICoding.time(v.updatedAt)],
            ]
            for (label, tensors) in [("input", detail.inputs), ("output", detail.outputs)] {
                for t in tensors ?? [] { rows.append([label, "\(t.name) \(t.datatype) [\(t.shape.map(String.init).joined(separator: ","))]"]) }
            }
            if let estimate = detail.memoryEstimateBytes {
                rows.append(["memory", String(format: "estimate %.1f MiB, measured %@", Double(estimate) / 1_048_576,
                                              detail.memoryMeasuredBytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "-")])
            }
            if let manifest = detail.manifest { rows.append(["manifest", manifest]) }
            return rows.map { $0[0].padding(toLength: 11, withPad: " ", startingAt: 0) + " " + $0[1] }.joined(separator: "\n")
        }
    }

    let promote = Command(
        "promote", abstract: "Make VERSION the production version of MODEL.",
        discussion: "The version must be ready and loaded, and take the same inputs (names, element types, ranks) as the\ncurrent production version; --force overrides the input check and is recorded. The previous\nproduction stays loaded for an instant rollback.",
        arguments: [ArgumentSpec(name: "model", help: "The model's name."), ArgumentSpec(name: "version", help: "The version to promote.")],
        options: [OptionSpec(long: "force", help: "Promote even if the inputs differ from production's (recorded)."), reasonOption]
    ) { invocation, context in
        let version = try parseVersion(invocation.arguments[1], currentCommand!)
        let body = reasonBody(PromoteRequest(version: version, force: invocation.flag("force") ? true : nil, reason: invocation.option("reason")))
        let (result, raw) = try context.client.call("POST", "/v1/models/\(escape(invocation.arguments[0]))/promote", body: body, as: ActionResult.self)
        context.show(raw) { describe(result) }
    }

    let rollback = Command(
        "rollback", abstract: "Send MODEL's traffic back to its previous production version (or to --to VERSION).",
        discussion: "A pointer swap when the target is still loaded; otherwise the target is re-verified and loaded first.",
        arguments: [ArgumentSpec(name: "model", help: "The model's name.")],
        options: [OptionSpec(long: "to", value: "version", help: "The version to go back to (default: the previous production)."), reasonOption]
    ) { invocation, context in
        let to = try invocation.option("to").map { (text: String) throws(UsageError) -> Int in try parseVersion(text, currentCommand!) }
        let body = reasonBody(RollbackRequest(to: to, reason: invocation.option("reason")))
        let (result, raw) = try context.client.call("POST", "/v1/models/\(escape(invocation.arguments[0]))/rollback", body: body, as: ActionResult.self)
        context.show(raw) { describe(result) }
    }

    let alias = Command(
        "alias", abstract: "Point an alias of MODEL at VERSION, or remove it with --remove.",
        discussion: "Aliases name versions ('candidate', 'stable', ...). 'production' is changed with promote and rollback.",
        arguments: [ArgumentSpec(name: "model", help: "The model's name."), ArgumentSpec(name: "alias", help: "The alias."),
                    ArgumentSpec(name: "version", help: "The version it points at (omit with --remove).", optional: true)],
        options: [OptionSpec(long: "remove", help: "Remove the alias."), reasonOption]
    ) { invocation, context in
        let (model, name) = (invocation.arguments[0], invocation.arguments[1])
        let target = "/v1/models/\(escape(model))/aliases/\(escape(name))"
        let result: ActionResult
        let raw: [UInt8]
        if invocation.flag("remove") {
            guard invocation.arguments.count == 2 else { throw UsageError(message: "--remove takes no <version>", command: currentCommand!) }
            (result, raw) = try context.client.call("DELETE", target, body: reasonBody(ReasonRequest(reason: invocation.option("reason"))), as: ActionResult.self)
        } else {
            guard invocation.arguments.count == 3 else { throw UsageError(message: "missing expected argument '<version>' (or --remove)", command: currentCommand!) }
            let version = try parseVersion(invocation.arguments[2], currentCommand!)
            (result, raw) = try context.client.call("PUT", target, body: reasonBody(AliasRequest(version: version, reason: invocation.option("reason"))), as: ActionResult.self)
        }
        context.show(raw) { describe(result) }
    }

    let split = Command(
        "split", abstract: "Split MODEL's traffic between loaded versions by weight, or end the split with --clear.",
        discussion: "Weights are whole percents that sum to 100: 'registryctl split digits 3=90 4=10'. Requests with a\nrouting key (X-Routing-Key, or parameters.routing_key) always land on the same version; raising the\nnewest version's weight only moves keys into it.",
        arguments: [ArgumentSpec(name: "model", help: "The model's name."),
                    ArgumentSpec(name: "version=weight", help: "A version and its percent of the traffic.", optional: true, repeating: true)],
        options: [OptionSpec(long: "clear", help: "End the split: production takes all unpinned traffic."), reasonOption]
    ) { invocation, context in
        let model = invocation.arguments[0]
        let target = "/v1/models/\(escape(model))/split"
        let pairs = invocation.arguments.dropFirst()
        let result: ActionResult
        let raw: [UInt8]
        if invocation.flag("clear") {
            guard pairs.isEmpty else { throw UsageError(message: "--clear takes no <version=weight>", command: currentCommand!) }
            (result, raw) = try context.client.call("DELETE", target, body: reasonBody(ReasonRequest(reason: invocation.option("reason"))), as: ActionResult.self)
        } else {
            guard !pairs.isEmpty else { throw UsageError(message: "missing expected argument '<version=weight>' (or --clear)", command: currentCommand!) }
            var weights: [String: Int] = [:]
            for pair in pairs {
                let parts = pair.split(separator: "=")
                guard parts.count == 2, let version = Int(parts[0]), version > 0, let weight = Int(parts[1]) else {
                    throw UsageError(message: "'\(pair)' is not VERSION=WEIGHT (for example 4=10)", command: currentCommand!)
                }
                weights[String(version)] = weight
            }
            (result, raw) = try context.client.call("PUT", target, body: reasonBody(SplitRequest(weights: weights, reason: invocation.option("reason"))), as: ActionResult.self)
        }
        context.show(raw) { describe(result) }
    }

    let rolloutVerbs = ["start", "status", "pause", "resume", "abort"].map { verb in
        Command(verb, abstract: verb == "start" ? "Start a gradual rollout of VERSION." : "\(verb.prefix(1).uppercased() + verb.dropFirst()) the model's rollout.",
                arguments: [ArgumentSpec(name: "model", help: "The model's name.")] + (verb == "start" ? [ArgumentSpec(name: "version", help: "The version to roll out.")] : []),
                options: verb == "start" ? [
                    OptionSpec(long: "steps", value: "percents", help: "Traffic steps, e.g. 1,5,25,50,100."),
                    OptionSpec(long: "interval", value: "duration", help: "Time per step, e.g. 5m."),
                    OptionSpec(long: "max-error-rate", value: "rate", help: "Fail the step above this error rate."),
                    OptionSpec(long: "max-latency-ratio", value: "ratio", help: "Fail the step above this p99 ratio to the baseline."),
                    OptionSpec(long: "min-requests", value: "n", help: "Hold the step below this many canary requests."),
                    reasonOption,
                ] : (verb == "status" ? [] : [reasonOption])) { invocation, context in
            let model = escape(invocation.arguments[0])
            let command = currentCommand!
            let (info, raw): (RolloutInfo, [UInt8])
            switch verb {
            case "status":
                (info, raw) = try context.client.call("GET", "/v1/models/\(model)/rollout", as: RolloutInfo.self)
            case "start":
                let version = try parseVersion(invocation.arguments[1], command)
                var request = RolloutStartRequest(version: version, reason: invocation.option("reason"))
                if let text = invocation.option("steps") {
                    let steps = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                    guard steps.count == text.split(separator: ",").count, !steps.isEmpty else {
                        throw UsageError(message: "--steps '\(text)' is not a comma-separated list of percents (for example 1,5,25,50,100)", command: command)
                    }
                    request.steps = steps
                }
                if let text = invocation.option("interval") {
                    guard let seconds = parseDuration(text) else {
                        throw UsageError(message: "--interval '\(text)' is not a duration (for example 30s, 5m, 1h)", command: command)
                    }
                    request.intervalSeconds = seconds
                }
                func number(_ name: String) throws(UsageError) -> Double? {
                    guard let text = invocation.option(name) else { return nil }
                    guard let value = Double(text) else { throw UsageError(message: "--\(name) '\(text)' is not a number", command: command) }
                    return value
                }
                request.maxErrorRate = try number("max-error-rate")
                request.maxLatencyRatio = try number("max-latency-ratio")
                if let text = invocation.option("min-requests") {
                    guard let value = Int(text), value > 0 else { throw UsageError(message: "--min-requests '\(text)' is not a positive integer", command: command) }
                    request.minRequests = value
                }
                (info, raw) = try context.client.call("POST", "/v1/models/\(model)/rollout", body: APICoding.encode(request), as: RolloutInfo.self)
            default:
                (info, raw) = try context.client.call("POST", "/v1/models/\(model)/rollout/\(verb)",
                                                      body: reasonBody(ReasonRequest(reason: invocation.option("reason"))), as: RolloutInfo.self)
            }
            context.show(raw) { describeRollout(info) }
        }
    }
    let rollout = Command("rollout", abstract: "Gradual rollouts: start, status, pause, resume, abort.", subcommands: rolloutVerbs)

    let shadow = Command(
        "shadow", abstract: "Mirror a share of MODEL's requests to VERSION, off the client's path; show or end the shadow.",
        discussion: "'registryctl shadow digits 4 --percent 20' mirrors 20% of the requests routed to digits (pinned requests\nare never mirrored) to version 4. The client's answer never waits for the shadow: mirrored requests wait in\na bounded queue and are dropped, and counted, when it is full, past the shadow's CPU budget, or while the\nmachine has little spare CPU. 'registryctl shadow digits' shows the agreement\nwith the served answers (top-1 for classifiers, max abs difference otherwise) and the latencies.",
        arguments: [ArgumentSpec(name: "model", help: "The model's name."), ArgumentSpec(name: "version", help: "The shadow version (omit to show the shadow).", optional: true)],
        options: [OptionSpec(long: "percent", value: "p", help: "Share of routed requests mirrored, 1-100 (default: 10)."),
                  OptionSpec(long: "off", help: "Stop mirroring."), reasonOption]
    ) { invocation, context in
        let model = invocation.arguments[0]
        let target = "/v1/models/\(escape(model))/shadow"
        var percent: Int?
        if let text = invocation.option("percent") {
            guard let value = Int(text), (1...100).contains(value) else {
                throw UsageError(message: "--percent '\(text)' is not a whole number in 1...100", command: currentCommand!)
            }
            percent = value
        }
        if invocation.flag("off") {
            guard invocation.arguments.count == 1, percent == nil else { throw UsageError(message: "--off takes no <version> and no --percent", command: currentCommand!) }
            let (result, raw) = try context.client.call("DELETE", target, body: reasonBody(ReasonRequest(reason: invocation.option("reason"))), as: ActionResult.self)
            context.show(raw) { describe(result) }
        } else if invocation.arguments.count == 2 {
            let version = try parseVersion(invocation.arguments[1], currentCommand!)
            let body = ShadowRequest(version: version, percent: percent, reason: invocation.option("reason"))
            let (result, raw) = try context.client.call("PUT", target, body: reasonBody(body), as: ActionResult.self)
            context.show(raw) { describe(result) }
        } else {
            guard percent == nil else { throw UsageError(message: "--percent needs a <version>", command: currentCommand!) }
            let (info, raw) = try context.client.call("GET", target, as: ShadowInfo.self)
            context.show(raw) { describeShadow(info) }
        }
    }

    let predict = Command(
        "predict", abstract: "Run one prediction through registryd (KServe v2 JSON) and print the outputs.",
        discussion: "Either --input NAME=V1,V2,... (datatype and shape from the model's metadata; one row), or --body FILE\nwith a complete v2 request ('-' reads stdin).",
        arguments: [ArgumentSpec(name: "model[@version]", help: "The model, optionally pinned to a version.")],
        options: [OptionSpec(long: "input", value: "name=values", help: "An input's values, comma-separated.", repeating: true),
                  OptionSpec(long: "body", value: "file", help: "A v2 inference request body."),
                  OptionSpec(long: "routing-key", value: "key", help: "Sticky routing key (X-Routing-Key).")]
    ) { invocation, context in
        let (model, version) = try parseModelRef(invocation.arguments[0], currentCommand!)
        let base = "/v2/models/\(escape(model))" + (version.map { "/versions/\($0)" } ?? "")
        var body: [UInt8]
        if let file = invocation.option("body") {
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
            guard let data else { throw CommandFailure(message: "cannot read '\(file)'") }
            body = Array(data)
        } else {
            let inputs = invocation.options["input"] ?? []
            guard !inputs.isEmpty else { throw UsageError(message: "give --input NAME=VALUES or --body FILE", command: currentCommand!) }
            let metaResponse = try context.client.send("GET", base)
            guard metaResponse.status == 200 else { throw Client.failure(metaResponse) }
            guard let meta = try? JSONSerialization.jsonObject(with: Data(metaResponse.body)) as? [String: Any],
                  let metaInputs = meta["inputs"] as? [[String: Any]] else { throw CommandFailure(message: "unexpected model metadata from registryd") }
            var parts: [String] = []
            for input in inputs {
                guard let equals = input.firstIndex(of: "=") else { throw UsageError(message: "'\(input)' is not NAME=VALUES", command: currentCommand!) }
                let name = String(input[..<equals])
                let values = input[input.index(after: equals)...].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let spec = metaInputs.first(where: { $0["name"] as? String == name }), let datatype = spec["datatype"] as? String,
                      let shape = spec["shape"] as? [Int] else {
                    throw CommandFailure(message: "model '\(model)' has no input '\(name)' (inputs: \(metaInputs.compactMap { $0["name"] as? String }.joined(separator: ", ")))")
                }
                let fixed = shape.filter { $0 > 0 }.reduce(1, *)
                let resolved = shape.map { $0 < 0 ? max(1, values.count / max(1, fixed)) : $0 }
                let data = datatype == "BYTES" ? values.map { JSONText.quoted($0) } : values
                parts.append("{\"name\":\(JSONText.quoted(name)),\"datatype\":\"\(datatype)\",\"shape\":[\(resolved.map(String.init).joined(separator: ","))],\"data\":[\(data.joined(separator: ","))]}")
            }
            body = Array("{\"inputs\":[\(parts.joined(separator: ","))]}".utf8)
        }
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        if let key = invocation.option("routing-key") { headers.append(("X-Routing-Key", key)) }
        let response = try context.client.send("POST", base + "/infer", body: body, headers: headers)
        guard response.status == 200 else { throw Client.failure(response) }
        context.show(response.body) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else { return String(decoding: response.body, as: UTF8.self) }
            var out = "model \(object["model_name"] ?? model) version \(object["model_version"] ?? "?")"
            if let parameters = object["parameters"] as? [String: Any] { out += " (\(parameters["routing"] ?? "?"), sha256 \(String(describing: parameters["sha256"] ?? "?").prefix(12)))" }
            for output in object["outputs"] as? [[String: Any]] ?? [] {
                let data = (output["data"] as? [Any])?.map { "\($0)" }.joined(separator: ", ") ?? ""
                out += "\n  \(output["name"] ?? "?") \(output["datatype"] ?? "") \(output["shape"] ?? ""): [\(data)]"
            }
            return out
        }
    }

    let verify = Command(
        "verify", abstract: "Re-hash every recorded artifact (or MODEL's) against the catalog; changed ones are quarantined.",
        arguments: [ArgumentSpec(name: "model", help: "Only this model.", optional: true)]
    ) { invocation, context in
        let target = "/v1/verify" + (invocation.arguments.first.map { "?model=\(escape($0))" } ?? "")
        let (report, raw) = try context.client.call("POST", target, body: Array("{}".utf8), as: VerifyReport.self)
        context.show(raw) {
            table([["MODEL", "VERSION", "RESULT", "SHA256"]] + report.items.map { [$0.model, String($0.version), $0.ok ? "ok" : ($0.problem ?? "failed"), String(($0.sha256 ?? "-").prefix(12))] })
                + "\n\(report.checked) checked, \(report.failed) failed"
        }
        if report.failed > 0 { throw CommandFailure(message: "\(report.failed) artifact(s) failed verification") }
    }

    let rescan = Command("rescan", abstract: "Rescan the model root now (and wait until admissions finish).",
                         options: [OptionSpec(long: "no-wait", help: "Return at once.")]) { invocation, context in
        let response = try context.client.send("POST", "/v1/rescan?wait=\(invocation.flag("no-wait") ? "false" : "true")", body: Array("{}".utf8))
        guard response.status == 200 else { throw Client.failure(response) }
        context.show(response.body) { "rescanned" }
    }

    let history = Command(
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
            let (report, raw) = try context.client.call("GET", "/v1/events/verify", as: ChainReport.self)
            context.show(raw) {
                report.intact ? "audit trail intact: \(report.events) events, hash chain verified"
                    : "AUDIT TRAIL BROKEN (\(report.events) events):\n" + report.problems.map { "  - " + $0 }.joined(separator: "\n")
            }
            if !report.intact { throw CommandFailure(message: "the audit trail has been tampered with") }
            return
        }
        if let at = invocation.option("at") {
            guard let model = invocation.arguments.first else { throw UsageError(message: "--at needs a <model>", command: currentCommand!) }
            let (served, raw) = try context.client.call("GET", "/v1/models/\(escape(model))/served-at?at=\(escape(at))", as: ServedAt.self)
            context.show(raw) {
                guard let version = served.version else { return "model '\(model)' had no production version at \(served.time)" }
                var line = "at \(served.time), model '\(model)' was served by version \(version)"
                if let split = served.split { line += " with split \(splitText(split))" }
                if let since = served.since { line += " (since \(APICoding.time(since)), event \(served.eventID.map(String.init) ?? "-"))" }
                return line
            }
            return
        }
        var query: [String] = []
        if let model = invocation.arguments.first { query.append("model=\(escape(model))") }
        for key in ["since", "until", "action", "limit"] { if let value = invocation.option(key) { query.append("\(key)=\(escape(value))") } }
        let (events, raw) = try context.client.call("GET", "/v1/events" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")), as: [EventInfo].self)
        context.show(raw) {
            table([["ID", "TIME", "ACTOR", "ACTION", "MODEL", "VERSION", "BEFORE", "AFTER", "REASON"]] + events.map { e in
                [String(e.id), e.time, e.actor, e.action, e.model ?? "-", e.version.map(String.init) ?? "-", e.before ?? "-", e.after ?? "-", e.reason]
            })
        }
    }

    let importCommand = Command(
        "import", abstract: "Copy FILE into the model root as a new version of MODEL, atomically.",
        discussion: "Writes a temporary directory beside the versions, fsyncs the file, then renames it into place, so\nregistryd never sees a partial file. The version defaults to one above the highest known.",
        arguments: [ArgumentSpec(name: "model", help: "The model's name."), ArgumentSpec(name: "file", help: "The .onnx file.")],
        options: [OptionSpec(long: "version", value: "n", help: "The version number (default: next)."),
                  OptionSpec(long: "manifest", value: "file", help: "A manifest.json to place beside it."),
                  OptionSpec(long: "wait", help: "Wait until registryd has admitted it and print its state.")]
    ) { invocation, context in
        let (model, file) = (invocation.arguments[0], invocation.arguments[1])
        let explicit = try invocation.option("version").map { (text: String) throws(UsageError) -> Int in try parseVersion(text, currentCommand!) }
        let (info, _) = try context.client.call("GET", "/v1/status", as: DaemonInfo.self)
        let version = try Importer.importModel(root: info.modelRoot, model: model, file: file, manifest: invocation.option("manifest"), version: explicit)
        var line = "imported '\(file)' as model '\(model)' version \(version) in \(info.modelRoot)"
        if invocation.flag("wait") {
            _ = try context.client.send("POST", "/v1/rescan?wait=true", body: Array("{}".utf8))
            let (modelInfo, _) = try context.client.call("GET", "/v1/models/\(escape(model))", as: ModelInfo.self)
            if let v = modelInfo.versions.first(where: { $0.version == version }) {
                line += "; state \(v.state.rawValue)" + (v.reason.isEmpty ? "" : " (\(v.reason))")
            }
        }
        context.print(line)
    }

    return Command(
        "registryctl", abstract: "Control registryd, the model registry and lifecycle daemon, over its Unix socket.",
        discussion: "Exit status: 0 on success, 1 when the command fails, 64 for a usage mistake.",
        options: [OptionSpec(long: "version", help: "Show the version.")],
        subcommands: [status, list, versions, show, promote, rollback, alias, split, rollout, shadow, predict, verify, rescan, reload, history, importCommand])
}

/// The command being run (for usage errors raised inside `run`).
nonisolated(unsafe) var currentCommand: Command?
