import Foundation
import Wire

/// A hand-written command-line parser with swift-argument-parser's conventions: `OVERVIEW /
/// USAGE / ARGUMENTS / OPTIONS / SUBCOMMANDS` help, `Error: ...` plus usage on stderr for
/// mistakes, "did you mean" for misspellings, exit 0 for help, 64 for usage errors.

/// One option of a command: a flag (`--force`) or an option with a value (`--reason <text>`).
struct OptionSpec {
    var long: String
    var short: Character?
    /// The value's placeholder; nil for a flag.
    var value: String?
    var help: String
    var repeating = false
}

/// One positional argument.
struct ArgumentSpec {
    var name: String
    var help: String
    var optional = false
    var repeating = false
}

/// The parsed command line of one command.
struct Invocation {
    var path: [String]
    var arguments: [String] = []
    var options: [String: [String]] = [:]
    var flags: Set<String> = []

    func option(_ name: String) -> String? { options[name]?.last }
    func flag(_ name: String) -> Bool { flags.contains(name) }
}

/// A usage mistake: reported with the command's usage and exit 64.
struct UsageError: Error {
    var message: String
    var command: Command
}

/// A failure of the command itself (daemon error, unreachable socket): exit 1.
struct CommandFailure: Error {
    var message: String
}

// @unchecked Sendable: the command tree is built once at start-up, before anything else runs,
// and only read afterwards, on the main thread (registryctl has no other threads); errors carry
// a reference to print the command's usage.
final class Command: @unchecked Sendable {
    let name: String
    let abstract: String
    let discussion: String?
    let arguments: [ArgumentSpec]
    let options: [OptionSpec]
    var subcommands: [Command]
    let run: ((Invocation, Context) throws -> Void)?
    weak var parent: Command?

    init(_ name: String, abstract: String, discussion: String? = nil, arguments: [ArgumentSpec] = [], options: [OptionSpec] = [],
         subcommands: [Command] = [], run: ((Invocation, Context) throws -> Void)? = nil) {
        self.name = name
        self.abstract = abstract
        self.discussion = discussion
        self.arguments = arguments
        self.options = options
        self.subcommands = subcommands
        self.run = run
        for sub in subcommands { sub.parent = self }
    }

    /// Options every command accepts.
    static let global: [OptionSpec] = [
        OptionSpec(long: "socket", value: "path", help: "The control socket (default: $REGISTRY_SOCKET, else /run/registryd/registryd.sock)."),
        OptionSpec(long: "json", help: "Print the API's JSON instead of a table."),
        OptionSpec(long: "help", short: "h", help: "Show help information."),
    ]

    var allOptions: [OptionSpec] { options + Command.global }

    var fullName: String {
        var names: [String] = []
        var current: Command? = self
        while let c = current {
            names.insert(c.name, at: 0)
            current = c.parent
        }
        return names.joined(separator: " ")
    }

    var usage: String {
        if !subcommands.isEmpty && run == nil { return "\(fullName) <subcommand>" }
        var parts = [fullName]
        for argument in arguments {
            var text = "<\(argument.name)>"
            if argument.repeating { text += " ..." }
            parts.append(argument.optional ? "[\(text)]" : text)
        }
        for option in options {
            let text = option.value.map { "--\(option.long) <\($0)>" } ?? "--\(option.long)"
            parts.append("[\(text)]" + (option.repeating ? " ..." : ""))
        }
        return parts.joined(separator: " ")
    }

    var help: String {
        var out = "OVERVIEW: \(abstract)\n"
        if let discussion { out += "\n" + discussion + "\n" }
        out += "\nUSAGE: \(usage)\n"
        func row(_ left: String, _ right: String) -> String {
            let padded = left.count < 24 ? left.padding(toLength: 24, withPad: " ", startingAt: 0) : left + "\n" + String(repeating: " ", count: 24)
            return "  " + padded + right + "\n"
        }
        if !arguments.isEmpty {
            out += "\nARGUMENTS:\n"
            for argument in arguments { out += row("<\(argument.name)>", argument.help) }
        }
        out += "\nOPTIONS:\n"
        for option in allOptions {
            var left = option.short.map { "-\($0), " } ?? ""
            left += "--\(option.long)"
            if let value = option.value { left += " <\(value)>" }
            out += row(left, option.help)
        }
        if !subcommands.isEmpty {
            out += "\nSUBCOMMANDS:\n"
            for sub in subcommands { out += row(sub.name, sub.abstract) }
            out += "\n  See '\(fullName) help <subcommand>' for detailed help.\n"
        }
        return out
    }

    /// Parses `argv` (without the program name) into the command to run and its invocation.
    func parse(_ argv: [String]) throws(UsageError) -> (Command, Invocation) {
        var invocation = Invocation(path: [name])
        var positional: [String] = []
        var index = 0
        var onlyPositional = false
        while index < argv.count {
            let word = argv[index]
            index += 1
            if !onlyPositional && word == "--" {
                onlyPositional = true
                continue
            }
            if !onlyPositional && word.hasPrefix("-") && word != "-" && !Command.looksNumeric(word) {
                var name: String
                var inlineValue: String?
                if word.hasPrefix("--") {
                    name = String(word.dropFirst(2))
                    if let equals = name.firstIndex(of: "=") {
                        inlineValue = String(name[name.index(after: equals)...])
                        name = String(name[..<equals])
                    }
                } else {
                    guard word.count == 2, let short = word.last, let spec = allOptions.first(where: { $0.short == short }) else {
                        throw UsageError(message: "unknown option '\(word)'", command: self)
                    }
                    name = spec.long
                }
                guard let spec = allOptions.first(where: { $0.long == name }) else {
                    var message = "unknown option '--\(name)'"
                    if let guess = Suggestion.closest(to: name, among: allOptions.map(\.long)) { message += "; did you mean '--\(guess)'?" }
                    throw UsageError(message: message, command: self)
                }
                if spec.value == nil {
                    if inlineValue != nil { throw UsageError(message: "option '--\(name)' takes no value", command: self) }
                    invocation.flags.insert(name)
                } else {
                    let value: String
                    if let inlineValue {
                        value = inlineValue
                    } else {
                        guard index < argv.count else { throw UsageError(message: "missing value for '--\(name) <\(spec.value!)>'", command: self) }
                        value = argv[index]
                        index += 1
                    }
                    if !spec.repeating && invocation.options[name] != nil {
                        throw UsageError(message: "option '--\(name)' is given more than once", command: self)
                    }
                    invocation.options[name, default: []].append(value)
                }
                continue
            }
            // The first positional word may name a subcommand.
            if positional.isEmpty && !subcommands.isEmpty {
                if word == "help" {
                    let rest = Array(argv[index...])
                    var target: Command = self
                    for name in rest {
                        guard let sub = target.subcommands.first(where: { $0.name == name }) else {
                            throw UsageError(message: "unknown subcommand '\(name)'", command: target)
                        }
                        target = sub
                    }
                    var help = Invocation(path: [])
                    help.flags.insert("help")
                    return (target, help)
                }
                guard let sub = subcommands.first(where: { $0.name == word }) else {
                    var message = "unknown subcommand '\(word)'"
                    if let guess = Suggestion.closest(to: word, among: subcommands.map(\.name)) { message += "; did you mean '\(guess)'?" }
                    throw UsageError(message: message, command: self)
                }
                // Options given before the subcommand (global ones) carry over.
                let (command, inner) = try sub.parse(Array(argv[index...]))
                var merged = inner
                merged.path = invocation.path + inner.path
                for (key, values) in invocation.options where merged.options[key] == nil { merged.options[key] = values }
                merged.flags.formUnion(invocation.flags)
                return (command, merged)
            }
            positional.append(word)
        }
        invocation.arguments = positional
        if invocation.flag("help") { return (self, invocation) }
        if run == nil {
            throw UsageError(message: subcommands.isEmpty ? "nothing to do" : "missing subcommand", command: self)
        }
        let required = arguments.filter { !$0.optional }.count
        if positional.count < required {
            let missing = arguments[positional.count]
            throw UsageError(message: "missing expected argument '<\(missing.name)>'", command: self)
        }
        if !(arguments.last?.repeating ?? false) && positional.count > arguments.count {
            throw UsageError(message: "unexpected argument '\(positional[arguments.count])'", command: self)
        }
        return (self, invocation)
    }

    static func looksNumeric(_ word: String) -> Bool {
        word.count > 1 && Double(word) != nil
    }
}
