import Foundation
import Testing
import Wire
@testable import Registry

/// Preprocessing contracts through the real v2 endpoint of an in-process daemon: identity models
/// echo what preprocessing made of the raw input, compared with the NumPy reference that
/// scripts/make_fixtures.py stored (Tests/Fixtures/models/preprocess_test.json).
@Suite("preprocessing contracts over v2", .serialized)
struct PreprocessServingTests {
    /// One contract of the fixture: the model, its manifest entry, a raw tensor and what the
    /// model must receive for it.
    struct Case {
        var name: String
        var model: String
        var input: String
        var contractJSON: String
        var rawJSON: String
        var expectedShape: [Int]
        var expectedBits: [UInt32]

        /// The model's name in the registry.
        var served: String { name.replacingOccurrences(of: "_", with: "-") }
        var output: String { input == "image" ? "pixels" : "y" }
        var manifest: String { #"{"preprocess":{"\#(input)":\#(contractJSON)}}"# }

        static func all() throws -> [Case] {
            let data = try #require(FileManager.default.contents(atPath: "\(fixtures)/preprocess_test.json"))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            return try (object["cases"] as! [[String: Any]]).map { entry in
                let raw = entry["raw"] as! [String: Any], expected = entry["expected"] as! [String: Any]
                let text = { (value: Any) throws -> String in String(decoding: try JSONSerialization.data(withJSONObject: value), as: UTF8.self) }
                return Case(name: entry["name"] as! String, model: entry["model"] as! String, input: entry["input"] as! String,
                            contractJSON: try text(entry["preprocess"]!),
                            rawJSON: #"{"name":"\#(entry["input"] as! String)","datatype":"\#(raw["datatype"] as! String)","shape":\#(try text(raw["shape"]!)),"data":\#(try text(raw["data"]!))}"#,
                            expectedShape: expected["shape"] as! [Int], expectedBits: (expected["bits"] as! [NSNumber]).map(\.uint32Value))
            }
        }
    }

    /// Distance in units in the last place between two finite floats of any sign.
    static func ulps(_ a: Float, _ b: Float) -> Int64 {
        func ordered(_ x: Float) -> Int64 {
            let bits = Int64(x.bitPattern & 0x7FFF_FFFF)
            return x.sign == .minus ? -bits : bits
        }
        return abs(ordered(a) - ordered(b))
    }

    /// An FP32 output of a v2 response whose outputs were asked for in binary: (shape, values).
    static func binaryFloats(_ response: HTTPResponse, _ name: String) throws -> (shape: [Int], values: [Float]) {
        let headLength = try #require(response.headers["Inference-Header-Content-Length"].flatMap { Int($0) }, "\(String(decoding: response.body, as: UTF8.self))")
        let head = try #require(try JSONSerialization.jsonObject(with: Data(response.body[0..<headLength])) as? [String: Any])
        var offset = headLength
        for output in head["outputs"] as! [[String: Any]] {
            let size = (output["parameters"] as! [String: Any])["binary_data_size"] as! Int
            if output["name"] as? String == name {
                #expect(output["datatype"] as? String == "FP32")
                let bytes = Array(response.body[offset..<offset + size])
                let values = stride(from: 0, to: size, by: 4).map { at in
                    Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) })
                }
                return (output["shape"] as! [Int], values)
            }
            offset += size
        }
        throw TestFailure("no output '\(name)' in \(head)")
    }

    func registry(_ cases: [Case]) throws -> TestRegistry {
        let registry = TestRegistry()
        for item in cases {
            try registry.makeModelDirectory(item.served)
            try dropAtomically(root: registry.root, model: item.served, version: 1, bytes: modelBytes(item.model), manifest: item.manifest)
        }
        try registry.start()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        return registry
    }

    @Test("every contract of the fixture gives the model the NumPy reference's input, within one unit in the last place (bit for bit here), and the signature shows the raw form")
    func matchesNumPy() throws {
        let cases = try Case.all()
        #expect(cases.count >= 8)
        let registry = try registry(cases)
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        for item in cases {
            #expect(registry.record(item.served, 1)?.state == .live, "\(item.name): \(registry.record(item.served, 1)?.reason ?? "no record")")
            let body = #"{"inputs":[\#(item.rawJSON)],"outputs":[{"name":"\#(item.output)","parameters":{"binary_data":true}}]}"#
            let response = try client.send("POST", "/v2/models/\(item.served)/infer", body: Array(body.utf8))
            #expect(response.status == 200, "\(item.name): \(String(decoding: response.body, as: UTF8.self))")
            guard response.status == 200 else { continue }
            let (shape, values) = try Self.binaryFloats(response, item.output)
            #expect(shape == item.expectedShape, "\(item.name)")
            let expected = item.expectedBits.map(Float.init(bitPattern:))
            #expect(values.count == expected.count, "\(item.name)")
            let worst = zip(values, expected).map { Self.ulps($0, $1) }.max() ?? 0
            #expect(worst <= 1, "\(item.name): \(worst) units in the last place from NumPy")
            #expect(worst == 0, "\(item.name): the same float32 operations in the same order round the same way")

            let (status, metadata) = try client.json("GET", "/v2/models/\(item.served)")
            #expect(status == 200)
            let input = try #require((metadata["inputs"] as? [[String: Any]])?.first)
            let raw = try #require(try JSONSerialization.jsonObject(with: Data(item.rawJSON.utf8)) as? [String: Any])
            #expect(input["datatype"] as? String == raw["datatype"] as? String, "\(item.name): \(input)")
            #expect((input["shape"] as? [Int])?.dropFirst() == (raw["shape"] as! [Int]).dropFirst(), "\(item.name): the model's own dimensions, raw layout: \(input)")
        }
    }

    @Test("a float image sent to a raw input, or raw pixels in the model's layout, get a 400 that states the contract")
    func refusals() throws {
        let cases = try Case.all().filter { $0.name == "nhwc_to_nchw_imagenet" }
        let registry = try registry(cases)
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let model = cases[0].served
        func infer(_ input: String) throws -> (Int, String) {
            let response = try client.send("POST", "/v2/models/\(model)/infer", body: Array(#"{"inputs":[\#(input)]}"#.utf8))
            return (response.status, String(decoding: response.body, as: UTF8.self))
        }
        let zeros = Array(repeating: "0", count: 60).joined(separator: ",")
        let float = try infer(#"{"name":"image","datatype":"FP32","shape":[1,4,5,3],"data":[\#(zeros)]}"#)
        #expect(float.0 == 400 && float.1.contains("input 'image' takes UINT8 [N,4,5,3] raw pixels (NHWC), got FP32 [1,4,5,3]"), "\(float)")
        let nchw = try infer(#"{"name":"image","datatype":"UINT8","shape":[1,3,4,5],"data":[\#(zeros)]}"#)
        #expect(nchw.0 == 400 && nchw.1.contains("input 'image' takes UINT8 [N,4,5,3] raw pixels (NHWC), got UINT8 [1,3,4,5]"), "\(nchw)")
        let resized = try infer(#"{"name":"image","datatype":"UINT8","shape":[1,5,4,3],"data":[\#(zeros)]}"#)
        #expect(resized.0 == 400 && resized.1.contains("got UINT8 [1,5,4,3]"), "no resizing: \(resized)")
        let fine = try infer(#"{"name":"image","datatype":"UINT8","shape":[2,4,5,3],"data":[\#(zeros),\#(zeros)]}"#)
        #expect(fine.0 == 200, "\(fine)")
    }

    @Test("a contract that does not fit the model fails the version naming the manifest key, loaded or sharing a loaded session; raw sample_inputs warm up through the contract")
    func contractsThatDoNotFit() throws {
        let cases = try Case.all().filter { $0.name == "nhwc_to_nchw_imagenet" }
        let registry = try registry(cases)
        let good = cases[0].contractJSON
        let oneMean = #"{"image":{"accepts":{"datatype":"UINT8","layout":"NHWC"},"to_layout":"NCHW","mean":[0.5]}}"#
        try registry.makeModelDirectory("bad")
        // Distinct bytes load their own session (the loader's check); identical bytes share the
        // loaded one (the twin's check, where the servable is made).
        try dropAtomically(root: registry.root, model: "bad", version: 1, bytes: modelBytes("image_identity_nchw.onnx", variant: 1),
                           manifest: #"{"preprocess":\#(oneMean)}"#)
        try dropAtomically(root: registry.root, model: "bad", version: 2, bytes: modelBytes("image_identity_nchw.onnx"),
                           manifest: #"{"preprocess":\#(oneMean)}"#)
        try dropAtomically(root: registry.root, model: "bad", version: 3, bytes: modelBytes("image_identity_nchw.onnx", variant: 2),
                           manifest: #"{"preprocess":{"picture":\#(good)}}"#)
        try dropAtomically(root: registry.root, model: "bad", version: 4, bytes: modelBytes("image_identity_nchw.onnx", variant: 3),
                           manifest: #"{"preprocess":{"image":{"accepts":{"datatype":"UINT8","layout":"NF"}}}}"#)
        let pixels = Array(repeating: "255", count: 60).joined(separator: ",")
        let sample = #"{"inputs":[{"name":"image","datatype":"UINT8","shape":[1,4,5,3],"data":[\#(pixels)]}]}"#
        let floatSample = sample.replacingOccurrences(of: "UINT8", with: "FP32")
        try dropAtomically(root: registry.root, model: "bad", version: 5, bytes: modelBytes("image_identity_nchw.onnx", variant: 4),
                           manifest: #"{"preprocess":{"image":\#(good)},"sample_inputs":\#(floatSample)}"#)
        try registry.makeModelDirectory("sampled")
        try dropAtomically(root: registry.root, model: "sampled", version: 1, bytes: modelBytes("image_identity_nchw.onnx", variant: 5),
                           manifest: #"{"preprocess":{"image":\#(good)},"sample_inputs":\#(sample)}"#)
        let expected = [
            1: "manifest key 'preprocess.image.mean': 1 value for 3 channels (input 'image' is [N, 3, 4, 5], NCHW)",
            2: "manifest key 'preprocess.image.mean': 1 value for 3 channels",
            3: "manifest key 'preprocess.picture': the model has no input 'picture' (inputs: image)",
            4: "manifest key 'preprocess.image.accepts.layout': 'NF' needs an input of rank 2, input 'image' is [N, 3, 4, 5]",
            5: "warm-up run on the manifest's sample_inputs failed: input 'image' takes UINT8 [N,4,5,3] raw pixels (NHWC), got FP32 [1,4,5,3]",
        ]
        for (version, reason) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(registry.waitForState("bad", version, [.failed]) != nil, "version \(version): \(String(describing: registry.record("bad", version)))")
            #expect(registry.record("bad", version)?.reason.contains(reason) == true, "version \(version): \(registry.record("bad", version)?.reason ?? "")")
        }
        #expect(registry.waitForState("sampled", 1, [.live]) != nil, "\(registry.record("sampled", 1)?.reason ?? "")")
    }

    @Test("a contract composes with heads: raw UINT8 rows give the heads' reference values bit for bit")
    func withHeads() throws {
        let registry = TestRegistry()
        try registry.makeModelDirectory("skin")
        let heads = try String(contentsOfFile: "\(fixtures)/skin_heads_manifest.json", encoding: .utf8)
        var manifest = try #require(try JSONSerialization.jsonObject(with: Data(heads.utf8)) as? [String: Any])
        manifest["preprocess"] = ["input": ["accepts": ["datatype": "UINT8", "layout": "NF"]]]
        try dropAtomically(root: registry.root, model: "skin", version: 1, bytes: modelBytes("skin_heads.onnx"),
                           manifest: String(decoding: try JSONSerialization.data(withJSONObject: manifest), as: UTF8.self))
        try registry.start()
        #expect(registry.waitForState("skin", 1, [.live]) != nil, "\(registry.record("skin", 1)?.reason ?? "")")
        let servable = try registry.daemon!.router.resolve(model: "skin", version: nil).0.servable
        #expect(servable is PreprocessServable && (servable as? PreprocessServable)?.base is HeadsServable)
        #expect(servable.signature.inputs.map(\.elementType) == [.uint8] && servable.signature.outputs.count == 4)
        #expect(ONNXServable.session(of: servable) != nil, "a twin can still find the session under both wrappers")

        let reference = try ClassificationServingTests.Reference()
        let body = #"{"inputs":[{"name":"input","datatype":"UINT8","shape":[\#(reference.inputs.count),6],"data":\#(reference.inputs)}],"outputs":[{"name":"skin_type","parameters":{"binary_data":true}}]}"#
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let (shape, values) = try Self.binaryFloats(client.send("POST", "/v2/models/skin/infer", body: Array(body.utf8)), "skin_type")
        #expect(shape == [reference.inputs.count, 5])
        #expect(values.map(\.bitPattern) == reference.heads["skin_type"]!.joined().map(\.bitPattern))
    }

    @Test("a signature over the artifact alone does not admit a manifest that declares a contract: it changes answers")
    func signatureCoversTheContract() throws {
        let keys = try Ed25519.generateKeyPair()
        let registry = TestRegistry(trustedKeys: ["release": Data(keys.publicKey).base64EncodedString()])
        try registry.makeModelDirectory("digits")
        try registry.start()
        let bytes = modelBytes("digits_group1.onnx")
        let artifact = SHA256.hex(of: bytes)
        let manifest = #"{"signature": "model.sig", "preprocess": {"input": {"accepts": {"datatype": "UINT8", "layout": "NF"}, "scale": 0.0625}}}"#
        let covering = try Ed25519.sign(message: "\(artifact) \(SHA256.hex(of: Data(manifest.utf8)))", privateKey: keys.privateKey)
        let artifactOnly = try Ed25519.sign(digestHex: artifact, privateKey: keys.privateKey)
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: bytes, manifest: manifest, extraFiles: ["model.sig": Data(covering)])
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: bytes, manifest: manifest, extraFiles: ["model.sig": Data(artifactOnly)])
        #expect(registry.waitForState("digits", 1, [.live]) != nil, "\(registry.record("digits", 1)?.reason ?? "")")
        #expect(registry.waitForState("digits", 2, [.quarantined]) != nil)
        #expect(registry.record("digits", 2)?.reason.contains("covers the artifact only, but the manifest declares preprocess") == true, "\(registry.record("digits", 2)?.reason ?? "")")
    }
}
