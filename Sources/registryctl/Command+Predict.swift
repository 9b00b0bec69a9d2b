import Foundation
import Glibc
import Wire

// `registryctl predict`: one prediction through the serving API.
extension Command {
    /// `registryctl predict MODEL[@VERSION]`: one prediction over KServe v2 (not a control endpoint).
    static func predict() -> Command {
        Command(
            "predict", abstract: "Run one prediction through registryd (KServe v2 JSON) and print the outputs.",
            discussion: "Either --input NAME=V1,V2,... (datatype and shape from the model's metadata; one row), or --body FILE\nwith a complete v2 request ('-' reads stdin).",
            arguments: [ArgumentSpec(name: "model[@version]", help: "The model, optionally pinned to a version.")],
            options: [OptionSpec(long: "input", value: "name=values", help: "An input's values, comma-separated.", repeating: true),
                      OptionSpec(long: "body", value: "file", help: "A v2 inference request body."),
                      OptionSpec(long: "routing-key", value: "key", help: "Sticky routing key (X-Routing-Key).")]
        ) { invocation, context in
            let (model, version) = try parseModelRef(invocation.arguments[0], currentCommand!)
            // The v2 inference API is not a control endpoint: its paths are built here, escaped as the table escapes.
            let base = "/v2/models/\(PathTemplate.escape(model))" + (version.map { "/versions/\($0)" } ?? "")
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
    }
}
