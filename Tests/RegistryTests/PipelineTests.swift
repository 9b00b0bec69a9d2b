import Foundation
import Testing
@testable import Registry
import Wire

/// Pipelines end to end: a router model picks, per image, which of three group classifiers
/// answers (scripts/fixtures_digits_pipeline.py), served by the real daemon as a version like
/// any other; the answers are the composed references computed in Python.
@Suite("pipelines", .serialized)
struct PipelineTests {
    static let pipeline = #"""
    {
      "description": "route a digit to the classifier of its group",
      "steps": [
        {"id": "router", "model": "ROUTER", "inputs": {"input": "$request.image"}},
        {"id": "classifier", "model": {"switch": "router.label", "cases": {"0": "low", "1": "mid", "2": "high"}},
         "inputs": {"input": "$request.image"}}
      ],
      "outputs": {"group": "router.label", "label": "classifier.label", "probabilities": "classifier.probabilities"}
    }
    """#

    static func pipeline(router: String) -> String { pipeline.replacingOccurrences(of: "ROUTER", with: router) }

    /// The five fixture models (router, router-b, low, mid, high) and pipeline `grouped` version 1.
    func registry(pipelinePolicy: ModelPolicy? = nil) throws -> (TestRegistry, DigitsPipelineFixtureTests.Reference) {
        let registry = TestRegistry(policies: pipelinePolicy.map { ["grouped": $0] } ?? [:])
        // The agreement figure counts every mirror: a queue that holds them all, no CPU budget.
        registry.config.shadowQueueSize = 1024
        registry.config.shadowCPUPercent = 100
        registry.config.shadowMinSpareCPUPercent = 0
        for (fixture, model) in DigitsPipelineFixtureTests.models.sorted(by: { $0.key < $1.key }) {
            try registry.makeModelDirectory(model)
            try dropAtomically(root: registry.root, model: model, version: 1, bytes: modelBytes("\(fixture).onnx"),
                               manifest: try String(contentsOfFile: "\(fixtures)/\(fixture)_manifest.json", encoding: .utf8))
        }
        try registry.makeModelDirectory("grouped")
        try registry.start()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        try drop(registry, "grouped", 1, Self.pipeline(router: "router"))
        #expect(registry.waitForState("grouped", 1, [.live]) != nil, "\(registry.record("grouped", 1)?.reason ?? "no record")")
        return (registry, try DigitsPipelineFixtureTests.Reference())
    }

    func drop(_ registry: TestRegistry, _ model: String, _ version: Int, _ pipeline: String) throws {
        let staging = "\(registry.root)/\(model)/.staging-\(version)"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        try Data(pipeline.utf8).write(to: URL(fileURLWithPath: "\(staging)/pipeline.json"))
        #expect(rename(staging, "\(registry.root)/\(model)/\(version)") == 0)
    }

    func body(_ rows: [[Int]], outputs: String = #"[{"name":"label"},{"name":"group"}]"#, key: String? = nil) -> [UInt8] {
        let parameters = key.map { #","parameters":{"routing_key":"\#($0)"}"# } ?? ""
        return Array(#"{"inputs":[{"name":"image","datatype":"UINT8","shape":[\#(rows.count),64],"data":\#(rows)}],"outputs":\#(outputs)\#(parameters)}"#.utf8)
    }

    func json(_ response: HTTPResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    func output(_ object: [String: Any], _ name: String) -> [Any]? {
        (object["outputs"] as? [[String: Any]])?.first { $0["name"] as? String == name }?["data"] as? [Any]
    }

    @Test("all 360 test images, one request each and as one batched binary request with classification, give the reference labels; the response names every step's version and hash; a mixed batch asking for raw probabilities gets a 400 naming the shapes")
    func referenceLabels() throws {
        let (registry, reference) = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let expected = reference.label["router"]!
        let groups = reference.group["router"]!
        for (index, row) in reference.inputs.enumerated() {
            let response = try client.send("POST", "/v2/models/grouped/infer", body: body([row]))
            #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
            let object = try json(response)
            #expect((output(object, "label") as? [NSNumber])?.map(\.intValue) == [expected[index]], "image \(index)")
            #expect((output(object, "group") as? [NSNumber])?.map(\.intValue) == [groups[index]], "image \(index)")
            if index == 0 {
                let steps = try #require((object["parameters"] as? [String: Any])?["steps"] as? String)
                let list = try #require(try JSONSerialization.jsonObject(with: Data(steps.utf8)) as? [[String: Any]])
                #expect(list.map { $0["step"] as? String } == ["router", "classifier"])
                #expect(list[0]["model"] as? String == "router" && list[0]["version"] as? Int == 1)
                #expect(list[0]["sha256"] as? String == SHA256.hex(of: modelBytes("digits_router.onnx")))
                let classifier = ["low", "mid", "high"][groups[0]]
                let fixture = ["digits_group0", "digits_group1", "digits_group2"][groups[0]]
                #expect(list[1]["model"] as? String == classifier && list[1]["sha256"] as? String == SHA256.hex(of: modelBytes("\(fixture).onnx")))
                #expect(list[1]["routing"] as? String == "production" && list[1]["rows"] as? Int == 1)
            }
        }

        // One binary request with every image, the probabilities as their top class.
        let pixels = reference.inputs.flatMap { $0.map(UInt8.init) }
        let header = Array(#"{"inputs":[{"name":"image","datatype":"UINT8","shape":[360,64],"parameters":{"binary_data_size":\#(pixels.count)}}],"outputs":[{"name":"label"},{"name":"probabilities","parameters":{"classification":1}}]}"#.utf8)
        let batched = try client.send("POST", "/v2/models/grouped/infer", body: header + pixels,
                                      headers: [("Inference-Header-Content-Length", String(header.count)), ("Content-Type", "application/octet-stream")])
        #expect(batched.status == 200, "\(String(decoding: batched.body, as: UTF8.self))")
        let object = try json(batched)
        #expect((output(object, "label") as? [NSNumber])?.map(\.intValue) == expected)
        let top = try #require(output(object, "probabilities") as? [String])
        // "score:index:name": the name is the digit, from the manifest of the model that answered the row.
        #expect(top.map { $0.split(separator: ":").last.map(String.init) } == expected.map { String($0) as String? })
        let steps = try #require((object["parameters"] as? [String: Any])?["steps"] as? String)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(steps.utf8)) as? [[String: Any]])
        #expect(list.count == 4 && list.first?["model"] as? String == "router", "\(list)")
        #expect(Set(list.dropFirst().compactMap { $0["model"] as? String }) == ["low", "mid", "high"], "\(list)")
        #expect(list.dropFirst().compactMap { $0["rows"] as? Int }.reduce(0, +) == 360)

        // The same rows with the raw probabilities: 4 classes for group 0, 3 for the others.
        let mixed = try client.send("POST", "/v2/models/grouped/infer", body: body(Array(reference.inputs.prefix(20)), outputs: #"[{"name":"probabilities"}]"#))
        let text = String(decoding: mixed.body, as: UTF8.self)
        #expect(mixed.status == 400, "\(text)")
        #expect(text.contains("output 'probabilities': output 'probabilities' of step 'classifier' has different shapes for this request's rows"), "\(text)")
        #expect(text.contains("FP32 [") && text.contains("'classification' parameter"), "\(text)")
    }

    @Test("v2 metadata of a pipeline shows its inputs and outputs")
    func metadata() throws {
        let (registry, _) = try registry()
        let (status, metadata) = try HTTPTestClient(unixPath: registry.config.controlSocket).json("GET", "/v2/models/grouped")
        #expect(status == 200)
        let inputs = try #require(metadata["inputs"] as? [[String: Any]])
        #expect(inputs.map { $0["name"] as? String } == ["image"] && inputs[0]["datatype"] as? String == "UINT8", "\(metadata)")
        #expect((metadata["outputs"] as? [[String: Any]])?.map { $0["name"] as? String } == ["group", "label", "probabilities"], "\(metadata)")
    }

    @Test("refusals: a model that has not arrived makes the pipeline wait, and it serves once the model does; an incompatible tensor and a cycle fail it naming the step; a value with no case is a 400")
    func refusals() throws {
        let (registry, reference) = try registry()
        // Waiting for a model, then ready when it arrives.
        try drop(registry, "grouped", 2, Self.pipeline(router: "router-c"))
        #expect(registry.wait { registry.record("grouped", 2)?.reason.hasPrefix("waiting for model 'router-c'") == true } != nil,
                "\(registry.record("grouped", 2)?.reason ?? "")")
        #expect(registry.record("grouped", 2)?.state == .loading)
        try registry.makeModelDirectory("router-c")
        try dropAtomically(root: registry.root, model: "router-c", version: 1, bytes: modelBytes("digits_router_b.onnx"),
                           manifest: try String(contentsOfFile: "\(fixtures)/digits_router_b_manifest.json", encoding: .utf8))
        #expect(registry.waitForState("grouped", 2, [.ready, .live]) != nil, "\(registry.record("grouped", 2)?.reason ?? "")")

        // The router's probabilities (FP32 [N,3]) cannot feed a classifier's image (UINT8 [N,64]).
        try drop(registry, "grouped", 3, #"{"steps": [{"id": "router", "model": "router", "inputs": {"input": "$request.image"}}, {"id": "low", "model": "low", "inputs": {"input": "router.probabilities"}}], "outputs": {"label": "low.label"}}"#)
        #expect(registry.waitForState("grouped", 3, [.failed]) != nil)
        #expect(registry.record("grouped", 3)?.reason == "step 'low' input 'input' reads 'router.probabilities', which is float rank 2; model 'low' version 1 takes uint8 rank 2",
                "\(registry.record("grouped", 3)?.reason ?? "")")

        // A pipeline that calls itself.
        try registry.makeModelDirectory("loop")
        try drop(registry, "loop", 1, #"{"steps": [{"id": "again", "model": "loop", "inputs": {"image": "$request.image"}}], "outputs": {"x": "again.x"}}"#)
        #expect(registry.waitForState("loop", 1, [.failed]) != nil)
        #expect(registry.record("loop", 1)?.reason == "cycle: loop -> loop", "\(registry.record("loop", 1)?.reason ?? "")")

        // A malformed graph: a step that reads a later one.
        try drop(registry, "loop", 2, #"{"steps": [{"id": "a", "model": "low", "inputs": {"input": "b.label"}}, {"id": "b", "model": "mid", "inputs": {"input": "$request.image"}}], "outputs": {"x": "a.label"}}"#)
        #expect(registry.waitForState("loop", 2, [.failed]) != nil)
        #expect(registry.record("loop", 2)?.reason.contains("key 'steps[0].inputs.input': 'b.label' refers to step 'b', which is not defined before it") == true,
                "\(registry.record("loop", 2)?.reason ?? "")")

        // Only group 0 has a case: an image of group 2 is a 400 naming the value and the step.
        try registry.makeModelDirectory("partial")
        try drop(registry, "partial", 1, #"{"steps": [{"id": "router", "model": "router", "inputs": {"input": "$request.image"}}, {"id": "classifier", "model": {"switch": "router.label", "cases": {"0": "low"}}, "inputs": {"input": "$request.image"}}], "outputs": {"label": "classifier.label"}}"#)
        #expect(registry.waitForState("partial", 1, [.live]) != nil, "\(registry.record("partial", 1)?.reason ?? "")")
        let row = reference.inputs[reference.group["router"]!.firstIndex(of: 2)!]
        let response = try HTTPTestClient(unixPath: registry.config.controlSocket).send("POST", "/v2/models/partial/infer", body: body([row], outputs: #"[{"name":"label"}]"#))
        let text = String(decoding: response.body, as: UTF8.self)
        #expect(response.status == 400 && text.contains("step 'classifier': value '2' of 'router.label' (row 0) has no case, and the step has no default"), "\(text)")
    }

    @Test("a pipeline version 2 with another router: promoted, rolled back, split 50/50 with sticky keys, and shadowed against version 1 with the agreement the fixture predicts")
    func lifecycle() throws {
        let (registry, reference) = try registry(pipelinePolicy: ModelPolicy(onNewVersion: .ready, keepPrevious: 2, requireSignature: false))
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        try drop(registry, "grouped", 2, Self.pipeline(router: "router-b"))
        #expect(registry.waitForState("grouped", 2, [.ready]) != nil, "\(registry.record("grouped", 2)?.reason ?? "")")
        func labels(_ key: String? = nil) throws -> [Int] {
            let response = try client.send("POST", "/v2/models/grouped/infer", body: body(reference.inputs, outputs: #"[{"name":"label"}]"#, key: key))
            #expect(response.status == 200)
            return (output(try json(response), "label") as? [NSNumber])?.map(\.intValue) ?? []
        }
        #expect(try labels() == reference.label["router"]!)
        var (status, answer) = try client.json("POST", "/v1/models/grouped/promote", #"{"version": 2, "reason": "tree router"}"#)
        #expect(status == 200, "\(answer)")
        #expect(try labels() == reference.label["router_b"]!)
        (status, answer) = try client.json("POST", "/v1/models/grouped/rollback", #"{"reason": "back"}"#)
        #expect(status == 200, "\(answer)")
        #expect(try labels() == reference.label["router"]!)

        (status, answer) = try client.json("PUT", "/v1/models/grouped/split", #"{"weights": {"1": 50, "2": 50}, "reason": "half"}"#)
        #expect(status == 200, "\(answer)")
        // A routing key always reaches the same version: its answers are one router's, every time.
        for key in ["alice", "bob", "carol", "dave"] {
            let first = try labels(key)
            #expect(first == reference.label["router"]! || first == reference.label["router_b"]!, "key \(key)")
            #expect(try labels(key) == first, "key \(key) moved between versions")
        }
        (status, answer) = try client.json("DELETE", "/v1/models/grouped/split", #"{"reason": "done"}"#)
        #expect(status == 200, "\(answer)")

        (status, answer) = try client.json("PUT", "/v1/models/grouped/shadow", #"{"version": 2, "percent": 100, "reason": "compare routers"}"#)
        #expect(status == 200, "\(answer)")
        for row in reference.inputs {
            #expect(try client.send("POST", "/v2/models/grouped/infer", body: body([row], outputs: #"[{"name":"group"},{"name":"label"},{"name":"probabilities"}]"#)).status == 200)
        }
        let mirror = registry.daemon!.lifecycle.mirror
        #expect(registry.wait { mirror.reports()["grouped"].map { $0.runs + $0.failed + $0.dropped } == reference.inputs.count } != nil)
        let (_, report) = try client.json("GET", "/v1/models/grouped/shadow")
        let agreed = reference.agreement["group"] as? Int
        #expect(report["output"] as? String == "group" && report["agreed_rows"] as? Int == agreed, "\(report)")
    }
}

extension PipelineTests {
    @Test("/metrics has each step's time and the pipeline's own overhead")
    func metrics() throws {
        let (registry, reference) = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        for row in reference.inputs.prefix(5) {
            #expect(try client.send("POST", "/v2/models/grouped/infer", body: body([row])).status == 200)
        }
        let text = String(decoding: try client.send("GET", "/metrics").body, as: UTF8.self)
        #expect(text.contains(#"registryd_pipeline_step_seconds_count{model="grouped",version="1",step="router"} 5"#), "\(text.suffix(1500))")
        #expect(text.contains(#"registryd_pipeline_step_seconds_count{model="grouped",version="1",step="classifier"} 5"#))
        #expect(text.contains(#"registryd_pipeline_overhead_seconds_count{model="grouped",version="1"} 5"#))
    }
}

extension PipelineTests {
    @Test("moving a model's traffic to a version a live pipeline's step cannot use is refused naming the pipeline (promote, split, rollout, rollback); --force does it and records it")
    func breakingMoves() throws {
        let (registry, _) = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        // A model with other inputs and outputs as 'mid' version 2.
        try dropAtomically(root: registry.root, model: "mid", version: 2, bytes: modelBytes("identity_float.onnx"))
        #expect(registry.waitForState("mid", 2, [.ready]) != nil)
        let breakage = "model 'mid' version 2 has no input 'input', which step 'classifier' of pipeline 'grouped' version 1 feeds"
        var (status, answer) = try client.json("POST", "/v1/models/mid/promote", #"{"version": 2, "reason": "try"}"#)
        #expect(status == 409 && (answer["error"] as? String)?.contains("would break a pipeline: \(breakage); use --force") == true, "\(answer)")
        (status, answer) = try client.json("PUT", "/v1/models/mid/split", #"{"weights": {"1": 90, "2": 10}}"#)
        #expect(status == 409 && (answer["error"] as? String)?.contains(breakage) == true, "\(answer)")
        (status, answer) = try client.json("POST", "/v1/models/mid/rollout", #"{"version": 2, "steps": [10, 100], "interval_seconds": 60}"#)
        #expect(status == 409 && (answer["error"] as? String)?.contains(breakage) == true, "\(answer)")
        #expect(registry.record("mid", 1)?.state == .live)

        (status, answer) = try client.json("POST", "/v1/models/mid/promote", #"{"version": 2, "force": true, "reason": "on purpose"}"#)
        #expect(status == 200, "\(answer)")
        let event = try #require(try registry.daemon!.catalog.events(model: "mid", actions: ["promote"]).last)
        #expect(event.draft.reason.hasPrefix("FORCED despite breaking a pipeline (\(breakage))"), "\(event.draft.reason)")

        // Back to version 1 (production's clients change inputs again: forced), then a rollback
        // to version 2 is refused for the pipeline's sake, unless forced too.
        (status, answer) = try client.json("POST", "/v1/models/mid/promote", #"{"version": 1, "force": true}"#)
        #expect(status == 200, "\(answer)")
        (status, answer) = try client.json("POST", "/v1/models/mid/rollback", #"{"reason": "again"}"#)
        #expect(status == 409 && (answer["error"] as? String)?.contains("would break a pipeline: \(breakage); use --force to roll back anyway") == true, "\(answer)")
        (status, answer) = try client.json("POST", "/v1/models/mid/rollback", #"{"force": true, "reason": "again"}"#)
        #expect(status == 200 && (answer["message"] as? String)?.hasSuffix("forced despite breaking a pipeline (recorded)") == true, "\(answer)")
    }
}

extension PipelineTests {
    @Test("registryctl show and the status page (rendered by Chromium) show a pipeline's steps")
    func showsSteps() throws {
        let (registry, _) = try registry()
        let show = try runSeparately([RegistryctlTests.binary, "--socket", registry.config.controlSocket, "show", "grouped"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("step        router: router (input=$request.image)"), "\(show.stdout)")
        #expect(show.stdout.contains("step        classifier: switch on router.label: 0 -> low, 1 -> mid, 2 -> high (input=$request.image)"), "\(show.stdout)")

        registry.stop()
        registry.config.listen = "127.0.0.1:0"
        registry.config.tcpStatusPage = true
        try registry.start()
        #expect(registry.waitForState("grouped", 1, [.live]) != nil)
        #expect(registry.wait { registry.daemon!.router.current.models["grouped"]?.production != nil } != nil)
        let port = try #require(registry.daemon!.tcpPort)
        let profile = TempDirectory()
        let dom = try runSeparately([StatusPageTests.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                     "--user-data-dir=\(profile.path)/chromium", "--virtual-time-budget=3000", "--dump-dom", "http://127.0.0.1:\(port)/"])
        #expect(dom.stdout.contains("data-loaded=\"true\""), "the page did not render: \(dom.stderr.suffix(500))")
        #expect(dom.stdout.contains("data-steps=\"2\""), "\(dom.stdout.count) bytes")
        #expect(dom.stdout.contains("data-step=\"classifier\"") && dom.stdout.contains("switch on router.label: 0 -&gt; low, 1 -&gt; mid, 2 -&gt; high"),
                "\(dom.stdout.components(separatedBy: "Pipeline steps").dropFirst().first?.prefix(600) ?? "")")
    }
}

extension PipelineTests {
    @Test("a step whose model has nothing serving at request time answers 503 naming the pipeline and the step")
    func stepUnavailable() throws {
        let (registry, reference) = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        var (status, answer) = try client.json("PUT", "/v1/models/low/aliases/candidate", #"{"version": 1}"#)
        #expect(status == 200, "\(answer)")
        try registry.makeModelDirectory("by-alias")
        try drop(registry, "by-alias", 1, #"{"steps": [{"id": "classify", "model": "low@candidate", "inputs": {"input": "$request.image"}}], "outputs": {"label": "classify.label"}}"#)
        #expect(registry.waitForState("by-alias", 1, [.live]) != nil, "\(registry.record("by-alias", 1)?.reason ?? "")")
        let request = body([reference.inputs[0]], outputs: #"[{"name":"label"}]"#)
        #expect(try client.send("POST", "/v2/models/by-alias/infer", body: request).status == 200)

        (status, answer) = try client.json("DELETE", "/v1/models/low/aliases/candidate", #"{"reason": "gone"}"#)
        #expect(status == 200, "\(answer)")
        let response = try client.send("POST", "/v2/models/by-alias/infer", body: request)
        let text = String(decoding: response.body, as: UTF8.self)
        #expect(response.status == 503, "\(text)")
        #expect(text.contains("model 'by-alias' version 1, step 'classify': model 'low' has no alias 'candidate'"), "\(text)")
    }
}

extension PipelineTests {
    @Test("a pipeline may call a pipeline: the inner one's steps are listed under the outer step")
    func nested() throws {
        let (registry, reference) = try registry()
        try registry.makeModelDirectory("outer")
        try drop(registry, "outer", 1, #"{"steps": [{"id": "inner", "model": "grouped", "inputs": {"image": "$request.pixels"}}], "outputs": {"digit": "inner.label"}}"#)
        #expect(registry.waitForState("outer", 1, [.live]) != nil, "\(registry.record("outer", 1)?.reason ?? "")")
        let rows = Array(reference.inputs.prefix(12))
        let request = Array(#"{"inputs":[{"name":"pixels","datatype":"UINT8","shape":[\#(rows.count),64],"data":\#(rows)}]}"#.utf8)
        let response = try HTTPTestClient(unixPath: registry.config.controlSocket).send("POST", "/v2/models/outer/infer", body: request)
        #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
        let object = try json(response)
        #expect((output(object, "digit") as? [NSNumber])?.map(\.intValue) == Array(reference.label["router"]!.prefix(12)))
        let steps = try #require((object["parameters"] as? [String: Any])?["steps"] as? String)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(steps.utf8)) as? [[String: Any]])
        #expect(list.first?["step"] as? String == "inner" && list.first?["model"] as? String == "grouped", "\(list)")
        #expect(list.dropFirst().allSatisfy { ($0["step"] as? String)?.hasPrefix("inner/") == true } && list.count >= 3, "\(list)")
    }
}
