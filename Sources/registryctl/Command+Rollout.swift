import Foundation
import Glibc
import Wire

// `registryctl rollout`: gradual rollouts and their verbs.
extension Command {
    /// `registryctl rollout start|status|pause|resume|abort MODEL`.
    static func rollout() -> Command {
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
                let model: PathParameters = [.model: invocation.arguments[0]]
                let command = currentCommand!
                let (info, raw): (RolloutInfo, [UInt8])
                switch verb {
                case "status":
                    (info, raw) = try context.client.call(ControlEndpoints.rollout, model)
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
                    (info, raw) = try context.client.call(ControlEndpoints.startRollout, model, body: request)
                default:
                    (info, raw) = try context.client.call(ControlEndpoints.controlRollout, [.model: invocation.arguments[0], .command: verb],
                                                          body: ReasonRequest(reason: invocation.option("reason")))
                }
                context.show(raw) { describeRollout(info) }
            }
        }
        return Command("rollout", abstract: "Gradual rollouts: start, status, pause, resume, abort.", subcommands: rolloutVerbs)
    }
}
