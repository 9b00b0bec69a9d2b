import Foundation
import Glibc
import Wire

// The commands that move a model's traffic: promote, rollback, alias, split, shadow.
extension Command {
    /// `registryctl promote MODEL VERSION`.
    static func promote() -> Command {
        Command(
            "promote", abstract: "Make VERSION the production version of MODEL.",
            discussion: "The version must be ready and loaded, take the same inputs (names, element types, ranks) as the\ncurrent production version, and keep what serving pipelines use of the model; --force overrides\nthese checks and is recorded. The previous production stays loaded for an instant rollback.",
            arguments: [ArgumentSpec(name: "model", help: "The model's name."), ArgumentSpec(name: "version", help: "The version to promote.")],
            options: [OptionSpec(long: "force", help: "Promote even if the inputs differ from production's, or a pipeline breaks (recorded)."), reasonOption]
        ) { invocation, context in
            let version = try parseVersion(invocation.arguments[1], currentCommand!)
            let body = PromoteRequest(version: version, force: invocation.flag("force") ? true : nil, reason: invocation.option("reason"))
            let (result, raw) = try context.client.call(ControlEndpoints.promote, [.model: invocation.arguments[0]], body: body)
            context.show(raw) { describe(result) }
        }
    }

    /// `registryctl rollback MODEL [--to VERSION]`.
    static func rollback() -> Command {
        Command(
            "rollback", abstract: "Send MODEL's traffic back to its previous production version (or to --to VERSION).",
            discussion: "A pointer swap when the target is still loaded; otherwise the target is re-verified and loaded first.\nRefused when a serving pipeline cannot use the target; --force overrides that and is recorded.",
            arguments: [ArgumentSpec(name: "model", help: "The model's name.")],
            options: [OptionSpec(long: "to", value: "version", help: "The version to go back to (default: the previous production)."),
                      OptionSpec(long: "force", help: "Roll back even if a serving pipeline cannot use the target (recorded)."), reasonOption]
        ) { invocation, context in
            let to = try invocation.option("to").map { (text: String) throws(UsageError) -> Int in try parseVersion(text, currentCommand!) }
            let body = RollbackRequest(to: to, force: invocation.flag("force") ? true : nil, reason: invocation.option("reason"))
            let (result, raw) = try context.client.call(ControlEndpoints.rollback, [.model: invocation.arguments[0]], body: body)
            context.show(raw) { describe(result) }
        }
    }

    /// `registryctl alias MODEL ALIAS [VERSION | --remove]`.
    static func alias() -> Command {
        Command(
            "alias", abstract: "Point an alias of MODEL at VERSION, or remove it with --remove.",
            discussion: "Aliases name versions ('candidate', 'stable', ...). 'production' is changed with promote and rollback.",
            arguments: [ArgumentSpec(name: "model", help: "The model's name."), ArgumentSpec(name: "alias", help: "The alias."),
                        ArgumentSpec(name: "version", help: "The version it points at (omit with --remove).", optional: true)],
            options: [OptionSpec(long: "remove", help: "Remove the alias."), reasonOption]
        ) { invocation, context in
            let (model, name) = (invocation.arguments[0], invocation.arguments[1])
            let target: PathParameters = [.model: model, .alias: name]
            let result: ActionResult
            let raw: [UInt8]
            if invocation.flag("remove") {
                guard invocation.arguments.count == 2 else { throw UsageError(message: "--remove takes no <version>", command: currentCommand!) }
                (result, raw) = try context.client.call(ControlEndpoints.removeAlias, target, body: ReasonRequest(reason: invocation.option("reason")))
            } else {
                guard invocation.arguments.count == 3 else { throw UsageError(message: "missing expected argument '<version>' (or --remove)", command: currentCommand!) }
                let version = try parseVersion(invocation.arguments[2], currentCommand!)
                (result, raw) = try context.client.call(ControlEndpoints.setAlias, target, body: AliasRequest(version: version, reason: invocation.option("reason")))
            }
            context.show(raw) { describe(result) }
        }
    }

    /// `registryctl split MODEL V=W... | --clear`.
    static func split() -> Command {
        Command(
            "split", abstract: "Split MODEL's traffic between loaded versions by weight, or end the split with --clear.",
            discussion: "Weights are whole percents that sum to 100: 'registryctl split digits 3=90 4=10'. Requests with a\nrouting key (X-Routing-Key, or parameters.routing_key) always land on the same version; raising the\nnewest version's weight only moves keys into it.",
            arguments: [ArgumentSpec(name: "model", help: "The model's name."),
                        ArgumentSpec(name: "version=weight", help: "A version and its percent of the traffic.", optional: true, repeating: true)],
            options: [OptionSpec(long: "clear", help: "End the split: production takes all unpinned traffic."), reasonOption]
        ) { invocation, context in
            let model = invocation.arguments[0]
            let target: PathParameters = [.model: model]
            let pairs = invocation.arguments.dropFirst()
            let result: ActionResult
            let raw: [UInt8]
            if invocation.flag("clear") {
                guard pairs.isEmpty else { throw UsageError(message: "--clear takes no <version=weight>", command: currentCommand!) }
                (result, raw) = try context.client.call(ControlEndpoints.clearSplit, target, body: ReasonRequest(reason: invocation.option("reason")))
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
                (result, raw) = try context.client.call(ControlEndpoints.setSplit, target, body: SplitRequest(weights: weights, reason: invocation.option("reason")))
            }
            context.show(raw) { describe(result) }
        }
    }

    /// `registryctl shadow MODEL [VERSION | --off]`.
    static func shadow() -> Command {
        Command(
            "shadow", abstract: "Mirror a share of MODEL's requests to VERSION, off the client's path; show or end the shadow.",
            discussion: "'registryctl shadow digits 4 --percent 20' mirrors 20% of the requests routed to digits (pinned requests\nare never mirrored) to version 4. The client's answer never waits for the shadow: mirrored requests wait in\na bounded queue and are dropped, and counted, when it is full, past the shadow's CPU budget, or while the\nmachine has little spare CPU. 'registryctl shadow digits' shows the agreement\nwith the served answers (top-1 for classifiers, max abs difference otherwise) and the latencies.",
            arguments: [ArgumentSpec(name: "model", help: "The model's name."), ArgumentSpec(name: "version", help: "The shadow version (omit to show the shadow).", optional: true)],
            options: [OptionSpec(long: "percent", value: "p", help: "Share of routed requests mirrored, 1-100 (default: 10)."),
                      OptionSpec(long: "off", help: "Stop mirroring."), reasonOption]
        ) { invocation, context in
            let model = invocation.arguments[0]
            let target: PathParameters = [.model: model]
            var percent: Int?
            if let text = invocation.option("percent") {
                guard let value = Int(text), (1...100).contains(value) else {
                    throw UsageError(message: "--percent '\(text)' is not a whole number in 1...100", command: currentCommand!)
                }
                percent = value
            }
            if invocation.flag("off") {
                guard invocation.arguments.count == 1, percent == nil else { throw UsageError(message: "--off takes no <version> and no --percent", command: currentCommand!) }
                let (result, raw) = try context.client.call(ControlEndpoints.clearShadow, target, body: ReasonRequest(reason: invocation.option("reason")))
                context.show(raw) { describe(result) }
            } else if invocation.arguments.count == 2 {
                let version = try parseVersion(invocation.arguments[1], currentCommand!)
                let body = ShadowRequest(version: version, percent: percent, reason: invocation.option("reason"))
                let (result, raw) = try context.client.call(ControlEndpoints.setShadow, target, body: body)
                context.show(raw) { describe(result) }
            } else {
                guard percent == nil else { throw UsageError(message: "--percent needs a <version>", command: currentCommand!) }
                let (info, raw) = try context.client.call(ControlEndpoints.shadow, target)
                context.show(raw) { describeShadow(info) }
            }
        }
    }
}
