import Foundation
import Glibc

// registryctl: parses the command line, runs one command against registryd's control socket,
// and exits 0 (success or help), 1 (the command failed) or 64 (a usage mistake).

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

let root = makeRoot()
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments == ["--version"] {
    print("registryctl 0.4.0")
    exit(0)
}
do {
    let (command, invocation) = try root.parse(arguments)
    if invocation.flag("help") {
        print(command.help, terminator: "")
        exit(0)
    }
    currentCommand = command
    let socket = invocation.option("socket") ?? ProcessInfo.processInfo.environment["REGISTRY_SOCKET"] ?? "/run/registryd/registryd.sock"
    try command.run!(invocation, Context(client: Client(socketPath: socket), json: invocation.flag("json")))
    exit(0)
} catch let error as UsageError {
    printError("Error: \(error.message)\nUsage: \(error.command.usage)\n  See '\(error.command.fullName) --help' for more information.")
    exit(64)
} catch let error as CommandFailure {
    printError("Error: \(error.message)")
    exit(1)
} catch {
    printError("Error: \(error)")
    exit(1)
}
