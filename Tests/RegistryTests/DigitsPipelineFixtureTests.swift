import Foundation
import Testing
@testable import Registry

/// The digits pipeline's fixtures (scripts/fixtures_digits_pipeline.py) served by the real
/// daemon with their own manifests: raw UINT8 pixels in, and the answers that the reference,
/// computed in Python, says the pipeline is made of.
@Suite("digits pipeline fixtures", .serialized)
struct DigitsPipelineFixtureTests {
    /// digits_pipeline_reference.json.
    struct Reference {
        var inputs: [[Int]]
        var groups: [[Int]]
        /// Per router ("router", "router_b"): the group of each image, the router's
        /// probabilities, and the composed pipeline's label and probabilities.
        var group: [String: [Int]] = [:]
        var routerProbabilities: [String: [[Float]]] = [:]
        var label: [String: [Int]] = [:]
        var probabilities: [String: [[Float]]] = [:]
        var agreement: [String: Any]

        init() throws {
            let data = try #require(FileManager.default.contents(atPath: "\(fixtures)/digits_pipeline_reference.json"))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            inputs = object["inputs"] as! [[Int]]
            groups = object["groups"] as! [[Int]]
            agreement = object["agreement"] as! [String: Any]
            for key in ["router", "router_b"] {
                let part = object[key] as! [String: Any]
                group[key] = part["group"] as? [Int]
                label[key] = part["label"] as? [Int]
                routerProbabilities[key] = (part["router_probabilities"] as! [[Double]]).map { $0.map(Float.init) }
                probabilities[key] = (part["probabilities"] as! [[Double]]).map { $0.map(Float.init) }
            }
        }
    }

    /// Fixture file stem → the model's name in the registry.
    static let models = ["digits_router": "router", "digits_router_b": "router-b",
                         "digits_group0": "low", "digits_group1": "mid", "digits_group2": "high"]

    func registry() throws -> TestRegistry {
        let registry = TestRegistry()
        for (fixture, model) in Self.models.sorted(by: { $0.key < $1.key }) {
            try registry.makeModelDirectory(model)
            try dropAtomically(root: registry.root, model: model, version: 1, bytes: modelBytes("\(fixture).onnx"),
                               manifest: try String(contentsOfFile: "\(fixtures)/\(fixture)_manifest.json", encoding: .utf8))
        }
        try registry.start()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        for model in Self.models.values {
            #expect(registry.record(model, 1)?.state == .live, "\(model): \(registry.record(model, 1)?.reason ?? "no record")")
        }
        return registry
    }

    /// Runs `rows` through `model` as one UINT8 request; its label and probabilities, and the
    /// top class of the probabilities as the classification text writes it.
    func infer(_ client: HTTPTestClient, _ model: String, _ rows: [[Int]]) throws -> (label: [Int], probabilities: [[Float]], top: [String]) {
        let body = #"{"inputs":[{"name":"input","datatype":"UINT8","shape":[\#(rows.count),64],"data":\#(rows)}],"outputs":[{"name":"label"},{"name":"probabilities"}]}"#
        let response = try client.send("POST", "/v2/models/\(model)/infer", body: Array(body.utf8))
        let text = String(decoding: response.body, as: UTF8.self)
        try #require(response.status == 200, "\(model): \(text)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        var label: [Int] = [], flat: [Float] = [], width = 0
        for output in object["outputs"] as! [[String: Any]] {
            let data = output["data"] as! [NSNumber]
            if output["name"] as? String == "label" {
                #expect(output["datatype"] as? String == "INT64" && output["shape"] as? [Int] == [rows.count])
                label = data.map(\.intValue)
            } else {
                width = (output["shape"] as! [Int])[1]
                flat = data.map(\.floatValue)
            }
        }
        let probabilities = (0..<rows.count).map { Array(flat[$0 * width..<($0 + 1) * width]) }
        let classified = #"{"inputs":[{"name":"input","datatype":"UINT8","shape":[\#(rows.count),64],"data":\#(rows)}],"outputs":[{"name":"probabilities","parameters":{"classification":1}}]}"#
        let topResponse = try client.send("POST", "/v2/models/\(model)/infer", body: Array(classified.utf8))
        let top = try #require(try JSONSerialization.jsonObject(with: Data(topResponse.body)) as? [String: Any])
        let strings = (top["outputs"] as! [[String: Any]])[0]["data"] as! [String]
        return (label, probabilities, strings)
    }

    /// The label of a classification's element, `<score>:<index>:<label>`.
    static func className(_ element: String) -> String {
        element.split(separator: ":").dropFirst(2).joined(separator: ":")
    }

    static func close(_ a: [[Float]], _ b: [[Float]]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in x.count == y.count && zip(x, y).allSatisfy { abs($0 - $1) <= 1e-6 } }
    }

    @Test("each fixture takes raw UINT8 [N,64] pixels through its manifest's contract and answers label INT64 [N] and probabilities [N,C], labelled")
    func signatures() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let widths = ["router": 3, "router-b": 3, "low": 4, "mid": 3, "high": 3]
        for (model, width) in widths {
            let (status, metadata) = try client.json("GET", "/v2/models/\(model)")
            #expect(status == 200)
            let inputs = try #require(metadata["inputs"] as? [[String: Any]])
            #expect(inputs.count == 1 && inputs[0]["name"] as? String == "input" && inputs[0]["datatype"] as? String == "UINT8" && inputs[0]["shape"] as? [Int] == [-1, 64], "\(model): \(inputs)")
            let outputs = try #require(metadata["outputs"] as? [[String: Any]])
            #expect(outputs.map { $0["name"] as! String } == ["label", "probabilities"])
            #expect(outputs.map { $0["shape"] as! [Int] } == [[-1], [-1, width]], "\(model): \(outputs)")
            let servable = try registry.daemon!.router.resolve(model: model, version: nil).0.servable
            #expect(servable.signature.labels["probabilities"]?.count == width)
        }
        let mid = try registry.daemon!.router.resolve(model: "mid", version: nil).0.servable
        #expect(mid.signature.labels["probabilities"] == ["4", "5", "6"])
    }

    @Test("the 360 test images reproduce the reference: each router's groups, and each group classifier's labels (global digits) on the images its router sends it")
    func reproducesTheReference() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let reference = try Reference()
        #expect(reference.inputs.count == 360 && reference.inputs.allSatisfy { $0.count == 64 && $0.allSatisfy { (0...16).contains($0) } })
        let classifiers = ["low", "mid", "high"]
        for (key, router) in [("router", "router"), ("router_b", "router-b")] {
            let groups = try #require(reference.group[key])
            let routed = try infer(client, router, reference.inputs)
            #expect(routed.label == groups, "\(router): groups differ at rows \(zip(routed.label, groups).enumerated().filter { $1.0 != $1.1 }.map(\.offset))")
            #expect(Self.close(routed.probabilities, reference.routerProbabilities[key]!), "\(router): probabilities")
            #expect(routed.top.map(Self.className) == groups.map { ["0-3", "4-6", "7-9"][$0] }, "\(router): the top class is labelled with the group's name")

            var label = Array(repeating: -1, count: groups.count)
            for (g, model) in classifiers.enumerated() {
                let rows = groups.indices.filter { groups[$0] == g }
                guard !rows.isEmpty else { continue }
                let answer = try infer(client, model, rows.map { reference.inputs[$0] })
                #expect(answer.label.allSatisfy { reference.groups[g].contains($0) }, "\(model) answers the digits of its group")
                #expect(Self.close(answer.probabilities, rows.map { reference.probabilities[key]![$0] }), "\(model) behind \(router): probabilities")
                #expect(answer.top.map(Self.className) == answer.label.map { String($0) }, "\(model): the digit's name labels its class")
                for (row, value) in zip(rows, answer.label) { label[row] = value }
            }
            #expect(label == reference.label[key], "\(router) then its group's classifier: the composed labels")
        }
        // The two pipelines' agreement, as the fixture states it, from what was served.
        let agreed = zip(reference.label["router"]!, reference.label["router_b"]!).filter { $0 == $1 }.count
        #expect(agreed == reference.agreement["label"] as? Int && agreed < 360)
        #expect(abs(Double(agreed) / 360 - (reference.agreement["label_fraction"] as! Double)) < 1e-12)
    }
}
