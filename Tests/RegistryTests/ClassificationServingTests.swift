import Foundation
import Testing
import InferenceCodec
import Wire
@testable import Registry

/// Classification outputs and heads through the real v2 endpoint of an in-process daemon: the
/// fixture model whose one output holds three heads, and digits with class names.
@Suite("classification and heads over v2", .serialized)
struct ClassificationServingTests {
    /// The fixture's references: inputs, logits, each head's values and its top classes as text.
    struct Reference {
        var inputs: [[Int]]
        var heads: [String: [[Float]]]
        var top: Int
        var classes: [String: [[String]]]

        init() throws {
            let object = try JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: "\(fixtures)/skin_heads_test.json")!) as! [String: Any]
            inputs = object["inputs"] as! [[Int]]
            heads = (object["heads"] as! [String: [[Double]]]).mapValues { $0.map { $0.map(Float.init) } }
            top = object["top"] as! Int
            classes = object["classes"] as! [String: [[String]]]
        }

        var body: String {
            "{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[\(inputs.count),6],\"data\":\(inputs)}"
        }
    }

    static let digitsNames = ["zero", "one", "two", "three", "four", "five", "six", "seven"]

    func registry() throws -> TestRegistry {
        let registry = TestRegistry()
        try registry.makeModelDirectory("skin")
        try dropAtomically(root: registry.root, model: "skin", version: 1, bytes: modelBytes("skin_heads.onnx"),
                           manifest: try String(contentsOfFile: "\(fixtures)/skin_heads_manifest.json", encoding: .utf8))
        try registry.makeModelDirectory("digits")
        // Eight names for ten classes: eight and nine go unnamed.
        let names = ClassificationServingTests.digitsNames.map { "\"\($0)\"" }.joined(separator: ",")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"),
                           manifest: #"{"labels":{"probabilities":[\#(names)]}}"#)
        for (model, fixture) in [("id-bool", "identity_bool.onnx"), ("id-bytes", "identity_string.onnx")] {
            try registry.makeModelDirectory(model)
            try dropAtomically(root: registry.root, model: model, version: 1, bytes: modelBytes(fixture))
        }
        try registry.start()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        return registry
    }

    /// The outputs of a JSON or binary v2 response, by name: (datatype, shape, values) with BYTES
    /// as strings and numbers as Floats.
    func outputs(_ response: HTTPResponse) throws -> [String: (datatype: String, shape: [Int], strings: [String], floats: [Float])] {
        let headLength = response.headers["Inference-Header-Content-Length"].flatMap { Int($0) } ?? response.body.count
        let head = try #require(try JSONSerialization.jsonObject(with: Data(response.body[0..<headLength])) as? [String: Any],
                                "\(String(decoding: response.body, as: UTF8.self))")
        var binary = headLength
        var result: [String: (String, [Int], [String], [Float])] = [:]
        for output in head["outputs"] as! [[String: Any]] {
            let datatype = output["datatype"] as! String
            var strings: [String] = [], floats: [Float] = []
            if let size = (output["parameters"] as? [String: Any])?["binary_data_size"] as? Int {
                let bytes = Array(response.body[binary..<binary + size])
                binary += size
                // Little-endian 32-bit words: a BYTES element's length, or an FP32 value.
                func word(_ at: Int) -> UInt32 {
                    (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
                }
                var offset = 0
                while offset < bytes.count {
                    if datatype == "BYTES" {
                        let length = Int(word(offset))
                        strings.append(String(decoding: bytes[offset + 4..<offset + 4 + length], as: UTF8.self))
                        offset += 4 + length
                    } else {
                        floats.append(Float(bitPattern: word(offset)))
                        offset += 4
                    }
                }
            } else if datatype == "BYTES" {
                strings = output["data"] as! [String]
            } else {
                floats = (output["data"] as! [NSNumber]).map { Float($0.doubleValue) }
            }
            result[output["name"] as! String] = (datatype, output["shape"] as! [Int], strings, floats)
        }
        return result
    }

    @Test("heads are outputs of their own beside the output they split: in the servable's signature, v2 metadata and the control API")
    func headsInTheSignature() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let (status, metadata) = try client.json("GET", "/v2/models/skin")
        #expect(status == 200)
        let outputs = try #require(metadata["outputs"] as? [[String: Any]])
        #expect(outputs.map { $0["name"] as! String } == ["logits", "skin_type", "hair_type", "condition"])
        #expect(outputs.map { $0["shape"] as! [Int] } == [[-1, 14], [-1, 5], [-1, 4], [-1, 5]])
        #expect(outputs.allSatisfy { $0["datatype"] as? String == "FP32" })
        let servable = try registry.daemon!.router.resolve(model: "skin", version: nil).0.servable
        #expect(servable is HeadsServable)
        #expect(servable.signature.labels["hair_type"] == ["straight", "wavy", "curly", "coily"])
        #expect(servable.signature.labels["logits"] == nil)
        let (_, shown) = try client.json("GET", "/v1/models/skin/versions/1")
        #expect("\(shown)".contains("skin_type") && "\(shown)".contains("condition"), "\(shown)")
    }

    @Test("each head equals the fixture's reference bit for bit; classification of a head, in JSON and in binary, is Triton's text with the head's labels")
    func headsServedAndLabelled() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let reference = try Reference()
        let heads = ["skin_type", "hair_type", "condition"]

        let raw = #"{"inputs":[\#(reference.body)],"outputs":[\#(heads.map { "{\"name\":\"\($0)\"}" }.joined(separator: ","))]}"#
        let values = try outputs(client.send("POST", "/v2/models/skin/infer", body: Array(raw.utf8)))
        #expect(values.keys.sorted() == heads.sorted(), "only what was asked for: not the logits the heads come from")
        for head in heads {
            let expected = reference.heads[head]!
            #expect(values[head]?.shape == [expected.count, expected[0].count])
            #expect(values[head]?.floats.map(\.bitPattern) == expected.joined().map(\.bitPattern), "\(head)")
        }

        for binary in [false, true] {
            let requested = heads.map { #"{"name":"\#($0)","parameters":{"classification":\#(reference.top),"binary_data":\#(binary)}}"# }
            let body = #"{"inputs":[\#(reference.body)],"outputs":[\#(requested.joined(separator: ",")),{"name":"logits"}]}"#
            let classified = try outputs(client.send("POST", "/v2/models/skin/infer", body: Array(body.utf8)))
            for head in heads {
                #expect(classified[head]?.datatype == "BYTES" && classified[head]?.shape == [reference.inputs.count, reference.top])
                #expect(classified[head]?.strings == reference.classes[head]!.joined().map { $0 }, "\(head), binary \(binary)")
            }
            #expect(classified["logits"]?.shape == [reference.inputs.count, 14], "a head's source asked for beside it is returned whole")
        }
        // More classes than a head has: all of them, [N, 4].
        let all = #"{"inputs":[\#(reference.body)],"outputs":[{"name":"hair_type","parameters":{"classification":10}}]}"#
        let hair = try #require(try outputs(client.send("POST", "/v2/models/skin/infer", body: Array(all.utf8)))["hair_type"])
        #expect(hair.shape == [reference.inputs.count, 4])
        #expect(Array(hair.strings.prefix(3)) == reference.classes["hair_type"]![0])
        #expect(hair.strings.allSatisfy { $0.split(separator: ":").count == 3 })
    }

    @Test("a plain output is classified with the manifest's labels; classes past a short list have none")
    func plainOutputLabels() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        var rows: [[Float]] = []
        for index in 0..<40 { rows.append(try digitsRow(index).0) }
        let input = "{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[\(rows.count),64],\"data\":\(rows.map { $0.map { Int($0) } })}"
        let raw = try outputs(client.send("POST", "/v2/models/digits/infer", body: Array(#"{"inputs":[\#(input)],"outputs":[{"name":"probabilities"}]}"#.utf8)))
        let probabilities = try #require(raw["probabilities"]).floats
        let body = #"{"inputs":[\#(input)],"outputs":[{"name":"probabilities","parameters":{"classification":3}},{"name":"label"}]}"#
        let classified = try outputs(client.send("POST", "/v2/models/digits/infer", body: Array(body.utf8)))
        let top = try #require(classified["probabilities"])
        #expect(top.shape == [rows.count, 3])
        // The reference: each row's scores sorted (ties by index), written with Foundation's %f.
        var expected: [String] = []
        for row in 0..<rows.count {
            let scores = Array(probabilities[row * 10..<row * 10 + 10])
            let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
            for index in order.prefix(3) {
                let name = index < ClassificationServingTests.digitsNames.count ? ":" + ClassificationServingTests.digitsNames[index] : ""
                expected.append(String(format: "%f", Double(scores[index])) + ":\(index)" + name)
            }
        }
        #expect(top.strings == expected)
        #expect(top.strings.contains { $0.hasSuffix(":9") || $0.hasSuffix(":8") }, "rows 0..<40 reach the unnamed classes")
        #expect(classified["label"]?.datatype == "INT64", "an output asked for without classification is returned as it is")
    }

    @Test("400s: an unknown output parameter, a class count that is not a positive integer, a classification of an output that holds no scores")
    func refusals() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let row = try digitsRow(0).0.map { Int($0) }
        func infer(_ model: String, _ input: String, _ outputs: String) throws -> (Int, String) {
            let response = try client.send("POST", "/v2/models/\(model)/infer", body: Array(#"{"inputs":[\#(input)],"outputs":\#(outputs)}"#.utf8))
            return (response.status, String(decoding: response.body, as: UTF8.self))
        }
        let digits = "{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,64],\"data\":\(row)}"
        let unknown = try infer("digits", digits, #"[{"name":"probabilities","parameters":{"shared_memory_region":"r0","binary_data":false}}]"#)
        #expect(unknown.0 == 400 && unknown.1.contains("output 'probabilities': unknown parameter 'shared_memory_region'"), "\(unknown)")
        let zero = try infer("digits", digits, #"[{"name":"probabilities","parameters":{"classification":0}}]"#)
        #expect(zero.0 == 400 && zero.1.contains("parameter 'classification' must be a positive integer"), "\(zero)")
        let fraction = try infer("digits", digits, #"[{"name":"probabilities","parameters":{"classification":1.5}}]"#)
        #expect(fraction.0 == 400 && fraction.1.contains("got 1.5"), "\(fraction)")
        let bool = try infer("id-bool", #"{"name":"x","datatype":"BOOL","shape":[1,4],"data":[true,false,true,true]}"#,
                             #"[{"name":"y","parameters":{"classification":2}}]"#)
        #expect(bool.0 == 400 && bool.1.contains("output 'y' is BOOL: a classification ranks numeric scores"), "\(bool)")
        let bytes = try infer("id-bytes", #"{"name":"x","datatype":"BYTES","shape":[1,4],"data":["a","b","c","d"]}"#,
                              #"[{"name":"y","parameters":{"classification":1}}]"#)
        #expect(bytes.0 == 400 && bytes.1.contains("output 'y' is BYTES"), "\(bytes)")
        let missing = try infer("digits", digits, #"[{"name":"nope","parameters":{"classification":1}}]"#)
        #expect(missing.0 == 400 && missing.1.contains("nope"), "an unknown output is refused by the model, in its words: \(missing)")
    }

    @Test("heads that do not fit the model fail the version naming the manifest key; a version sharing a loaded session gets its own heads, or fails the same way")
    func headsThatDoNotFit() throws {
        let registry = try registry()
        let manifest = try String(contentsOfFile: "\(fixtures)/skin_heads_manifest.json", encoding: .utf8)
        let short = manifest.replacingOccurrences(of: #""name": "condition",\#n        "size": 5"#, with: #""name": "condition",\#n        "size": 4"#)
            .replacingOccurrences(of: #""rosacea",\#n          "psoriasis""#, with: #""rosacea""#)
        #expect(short != manifest)
        try dropAtomically(root: registry.root, model: "skin", version: 2, bytes: modelBytes("skin_heads.onnx", variant: 2), manifest: short)
        #expect(registry.waitForState("skin", 2, [.failed]) != nil)
        let reason = registry.record("skin", 2)?.reason ?? ""
        #expect(reason.contains("manifest key 'heads.logits': the heads' sizes add up to 13 (5+4+4), output 'logits' has 14 in its last dimension"), "\(reason)")

        // Identical bytes to digits version 1 share its session and load nothing: their heads are
        // checked all the same, and heads that do not fit fail the version.
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_logreg.onnx"),
                           manifest: #"{"heads":{"probabilities":[{"name":"low","size":5,"labels":["0","1","2","3","4"]},{"name":"high","size":5}]}}"#)
        try dropAtomically(root: registry.root, model: "digits", version: 3, bytes: modelBytes("digits_logreg.onnx"),
                           manifest: #"{"heads":{"probabilities":[{"name":"low","size":5},{"name":"high","size":4}]}}"#)
        #expect(registry.waitForState("digits", 3, [.failed]) != nil && registry.waitForState("digits", 2, [.ready]) != nil)
        #expect(registry.record("digits", 3)?.reason.contains("manifest key 'heads.probabilities': the heads' sizes add up to 9") == true,
                "\(registry.record("digits", 3)?.reason ?? "")")
        #expect(registry.record("digits", 2)?.reason.contains("same artifact as 'digits' version 1") == true)
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let (_, metadata) = try client.json("GET", "/v2/models/digits/versions/2")
        #expect((metadata["outputs"] as? [[String: Any]])?.map { $0["name"] as! String } == ["label", "probabilities", "low", "high"])
        let row = try digitsRow(0).0.map { Int($0) }
        let body = #"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,64],"data":\#(row)}],"outputs":[{"name":"low","parameters":{"classification":1}}]}"#
        let low = try outputs(client.send("POST", "/v2/models/digits/versions/2/infer", body: Array(body.utf8)))
        // "score:index:label", where the head's labels name each class by its index.
        let parts = low["low"]?.strings.first?.split(separator: ":") ?? []
        #expect(parts.count == 3 && parts[1] == parts[2], "\(String(describing: low["low"]))")
        let refused = try client.send("POST", "/v2/models/digits/versions/3/infer", body: Array(body.utf8))
        #expect(refused.status == 503, "a failed version never serves")
    }
}
