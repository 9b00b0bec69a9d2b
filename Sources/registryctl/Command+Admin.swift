import Foundation
import Glibc
import Wire

// The commands that act on the daemon and the model root: rescan, reload, import.
extension Command {
    /// `registryctl rescan`: scan the model root now.
    static func rescan() -> Command {
        Command("rescan", abstract: "Rescan the model root now (and wait until admissions finish).",
                             options: [OptionSpec(long: "no-wait", help: "Return at once.")]) { invocation, context in
            let (_, raw) = try context.client.call(ControlEndpoints.rescan, query: [("wait", invocation.flag("no-wait") ? "false" : "true")], body: EmptyBody())
            context.show(raw) { "rescanned" }
        }
    }

    /// `registryctl reload`: re-read the configuration.
    static func reload() -> Command {
        Command(
            "reload", abstract: "Make registryd re-read its configuration (as SIGHUP does).",
            discussion: "Model policies, log level and format, trusted keys, the settle window and the memory budget take\neffect at once; keys fixed at start (listeners, catalog, threads) are named and wait for a restart.\nA configuration with an error is refused with the reason, and the one in force stays."
        ) { invocation, context in
            let (result, raw) = try context.client.call(ControlEndpoints.reload, body: EmptyBody())
            context.show(raw) {
                var text = result.message
                if !result.changed.isEmpty { text += "\nin force now: " + result.changed.joined(separator: ", ") }
                if !result.restartRequired.isEmpty { text += "\nafter a restart: " + result.restartRequired.joined(separator: ", ") }
                return text
            }
        }
    }

    /// `registryctl import MODEL FILE`: place a file into the model root atomically.
    static func importModel() -> Command {
        Command(
            "import", abstract: "Copy FILE into the model root as a new version of MODEL, atomically.",
            discussion: "Writes a temporary directory beside the versions, fsyncs the file, then renames it into place, so\nregistryd never sees a partial file. The version defaults to one above the highest known.",
            arguments: [ArgumentSpec(name: "model", help: "The model's name."), ArgumentSpec(name: "file", help: "The .onnx file.")],
            options: [OptionSpec(long: "version", value: "n", help: "The version number (default: next)."),
                      OptionSpec(long: "manifest", value: "file", help: "A manifest.json to place beside it."),
                      OptionSpec(long: "wait", help: "Wait until registryd has admitted it and print its state.")]
        ) { invocation, context in
            let (model, file) = (invocation.arguments[0], invocation.arguments[1])
            let explicit = try invocation.option("version").map { (text: String) throws(UsageError) -> Int in try parseVersion(text, currentCommand!) }
            let (info, _) = try context.client.call(ControlEndpoints.status)
            let version = try Importer.importModel(root: info.modelRoot, model: model, file: file, manifest: invocation.option("manifest"), version: explicit)
            var line = "imported '\(file)' as model '\(model)' version \(version) in \(info.modelRoot)"
            if invocation.flag("wait") {
                // Whatever the rescan answers, the listing below says what became of the version.
                _ = try context.client.send(ControlEndpoints.rescan.request(query: [("wait", "true")], body: EmptyBody()))
                let (modelInfo, _) = try context.client.call(ControlEndpoints.model, [.model: model])
                if let v = modelInfo.versions.first(where: { $0.version == version }) {
                    line += "; state \(v.state.rawValue)" + (v.reason.isEmpty ? "" : " (\(v.reason))")
                }
            }
            context.print(line)
        }
    }
}
