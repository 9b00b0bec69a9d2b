import Foundation
import Glibc
import Wire

// `registryctl predict`: one prediction through the serving API.
extension Command {
    /// `registryctl predict MODEL[@VERSION]`: one prediction over KServe v2 (not a control endpoint).
    static func predict() -> Command {
        Command(
            "predict", abstract: "Run one prediction through registryd (KServe v2 JSON) and print the outputs.",
            discussion: """
                Either --input NAME=V1,V2,... (datatype and shape from the model's metadata; one row), or --body FILE
                with a complete v2 request ('-' reads stdin). --top K prints each score output's K highest classes
                with their names (the manifest's labels), as Triton's classification returns them: every output
                with a numeric datatype and two or more dimensions, or those named with --output.
                """,
            arguments: [ArgumentSpec(name: "model[@version]", help: "The model, optionally pinned to a version.")],
            options: [OptionSpec(long: "input", value: "name=values", help: "An input's values, comma-separated.", repeating: true),
                      OptionSpec(long: "body", value: "file", help: "A v2 inference request body."),
                      OptionSpec(long: "output", value: "name", help: "An output to ask for (repeatable, with --input; default: all).", repeating: true),
                      OptionSpec(long: "top", value: "k", help: "The K highest classes of each score output, labelled."),
                      OptionSpec(long: "routing-key", value: "key", help: "Sticky routing key (X-Routing-Key).")]
        ) { invocation, context in
            let (model, version) = try parseModelRef(invocation.arguments[0], currentCommand!)
            // The v2 inference API is not a control endpoint: its paths are built here, escaped as the table escapes.
            let base = "/v2/models/\(PathTemplate.escape(model))" + (version.map { "/versions/\($0)" } ?? "")
            var top: Int?
            if let text = invocation.option("top") {
                guard let value = Int(text), value > 0 else { throw UsageError(message: "--top '\(text)' is not a positive integer", command: currentCommand!) }
                top = value
            }
            let named = invocation.options["output"] ?? []
            // The outputs asked for with a classification: their answers are printed as classes.
            var classified: Set<String> = []
            var body: [UInt8]
            if let file = invocation.option("body") {
                guard top == nil, named.isEmpty else {
                    throw UsageError(message: "--top and --output build the request's outputs; with --body, write them in the body (\"parameters\": {\"classification\": K})", command: currentCommand!)
                }
                let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
                guard let data else { throw CommandFailure(message: "cannot read '\(file)'") }
                body = Array(data)
            } else {
                let inputs = invocation.options["input"] ?? []
                guard !inputs.isEmpty else { throw UsageError(message: "give --input NAME=VALUES or --body FILE", command: currentCommand!) }
                let metaResponse = try context.client.send("GET", base)
                guard metaResponse.status == 200 else { throw Client.failure(metaResponse) }
                guard let meta = try? JSONSerialization.jsonObject(with: Data(metaResponse.body)) as? [String: Any],
                      let metaInputs = meta["inputs"] as? [[String: Any]], let metaOutputs = meta["outputs"] as? [[String: Any]]
                else { throw CommandFailure(message: "unexpected model metadata from registryd") }
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
                let outputs = try requestedOutputs(metaOutputs, named: named, top: top, model: model)
                classified = Set(outputs.filter { $0.classify }.map(\.name))
                let outputList = outputs.map { output in
                    "{\"name\":\(JSONText.quoted(output.name))" + (output.classify ? ",\"parameters\":{\"classification\":\(top!)}" : "") + "}"
                }
                body = Array("{\"inputs\":[\(parts.joined(separator: ","))]\(named.isEmpty && top == nil ? "" : ",\"outputs\":[\(outputList.joined(separator: ","))]")}".utf8)
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
                    if let name = output["name"] as? String, classified.contains(name) {
                        out += "\n  \(name) top \(top!):" + classes(output)
                        continue
                    }
                    let data = (output["data"] as? [Any])?.map { "\($0)" }.joined(separator: ", ") ?? ""
                    out += "\n  \(output["name"] ?? "?") \(output["datatype"] ?? "") \(output["shape"] ?? ""): [\(data)]"
                }
                return out
            }
        }
    }

    /// The outputs to ask for: those named, else every output of the model's metadata; with
    /// `top`, each holds a classification when it holds scores (a numeric datatype; with no
    /// names given, also two or more dimensions, so that a [N] label output is left as it is).
    static func requestedOutputs(_ metadata: [[String: Any]], named: [String], top: Int?, model: String) throws -> [(name: String, classify: Bool)] {
        let known = metadata.compactMap { $0["name"] as? String }
        for name in named where !known.contains(name) {
            throw CommandFailure(message: "model '\(model)' has no output '\(name)' (outputs: \(known.joined(separator: ", ")))")
        }
        return metadata.compactMap { output in
            guard let name = output["name"] as? String, named.isEmpty || named.contains(name) else { return nil }
            let datatype = output["datatype"] as? String ?? ""
            let scores = datatype != "BOOL" && datatype != "BYTES" && (!named.isEmpty || (output["shape"] as? [Int] ?? []).count >= 2)
            return (name, top != nil && scores)
        }
    }

    /// A classified output's rows: "score:index[:label]" as "score label (class index)".
    static func classes(_ output: [String: Any]) -> String {
        let entries = (output["data"] as? [String]) ?? []
        let shape = output["shape"] as? [Int] ?? []
        let perRow = max(1, shape.last ?? entries.count)
        var out = ""
        for (row, start) in stride(from: 0, to: entries.count, by: perRow).enumerated() {
            let items = entries[start..<min(start + perRow, entries.count)].map { entry -> String in
                // A label may hold colons of its own: only the first two separate fields.
                let fields = entry.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                guard fields.count >= 2 else { return entry }
                return fields.count == 3 ? "\(fields[0]) \(fields[2]) (class \(fields[1]))" : "\(fields[0]) (class \(fields[1]))"
            }
            out += "\n    row \(row): " + items.joined(separator: ", ")
        }
        return out
    }
}
