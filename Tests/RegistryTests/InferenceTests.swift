import Foundation
import Glibc
import Runtime
import Testing
import Wire
import InferenceCodec
@testable import Registry

/// The KServe v2 endpoints, over the real socket of an in-process daemon.
@Suite("KServe v2 inference", .serialized)
struct InferenceTests {
    /// One model per datatype (identity models: y = x, x of shape [N, 4]), plus digits.
    static let datatypes: [(DataType, String, String)] = [
        (.bool, "identity_bool.onnx", "true,false,true,true"),
        (.uint8, "identity_uint8.onnx", "0,1,254,255"),
        (.uint16, "identity_uint16.onnx", "0,1,65534,65535"),
        (.uint32, "identity_uint32.onnx", "0,1,4294967294,4294967295"),
        (.uint64, "identity_uint64.onnx", "0,1,9007199254740993,18446744073709551615"),
        (.int8, "identity_int8.onnx", "-128,-1,0,127"),
        (.int16, "identity_int16.onnx", "-32768,-1,0,32767"),
        (.int32, "identity_int32.onnx", "-2147483648,-1,0,2147483647"),
        (.int64, "identity_int64.onnx", "-9223372036854775808,-1,9007199254740993,9223372036854775807"),
        (.fp16, "identity_float16.onnx", "0.5,-2.0,65504.0,0.0"),
        (.bf16, "identity_bfloat16.onnx", "0.5,-2.0,1.0,256.0"),
        (.fp32, "identity_float.onnx", "0.1,-2.5,3.4028235e+38,1e-45"),
        (.fp64, "identity_double.onnx", "0.1,-2.5,1.7976931348623157e+308,5e-324"),
        (.bytes, "identity_string.onnx", "\"a\",\"\",\"caf\\u00e9\",\"x\\\"y\""),
    ]

    func registry(listen: Bool = false) throws -> TestRegistry {
        let registry = TestRegistry()
        if listen { registry.config.listen = "127.0.0.1:0" }
        for (datatype, fixture, _) in InferenceTests.datatypes {
            let model = "id-\(datatype.rawValue.lowercased())"
            try registry.makeModelDirectory(model)
            try dropAtomically(root: registry.root, model: model, version: 1, bytes: modelBytes(fixture))
        }
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try registry.makeModelDirectory("broken")
        try dropAtomically(root: registry.root, model: "broken", version: 1, bytes: modelBytes("truncated.onnx"))
        try registry.makeModelDirectory("faulty")
        try dropAtomically(root: registry.root, model: "faulty", version: 1, bytes: modelBytes("digits_faulty.onnx"))
        try registry.start()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        return registry
    }

    @Test("every datatype round-trips through JSON, and through Triton's binary extension, bit for bit")
    func datatypes() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        for (datatype, _, data) in InferenceTests.datatypes {
            let model = "id-\(datatype.rawValue.lowercased())"
            let body = #"{"id":"r-\#(model)","inputs":[{"name":"x","datatype":"\#(datatype.rawValue)","shape":[1,4],"data":[[\#(data)]]}]}"#
            let response = try client.send("POST", "/v2/models/\(model)/infer", body: Array(body.utf8))
            #expect(response.status == 200, "\(datatype): \(String(decoding: response.body, as: UTF8.self))")
            let object = try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
            #expect(object["id"] as? String == "r-\(model)" && object["model_version"] as? String == "1")
            let output = (object["outputs"] as! [[String: Any]])[0]
            #expect(output["datatype"] as? String == datatype.rawValue && output["shape"] as? [Int] == [1, 4])
            // Compare the echoed data with what was sent, as JSON values.
            let sent = try JSONSerialization.jsonObject(with: Data("[\(data)]".utf8)) as! [Any]
            #expect("\(output["data"]!)" == "\(sent)", "\(datatype): sent \(sent), got \(output["data"]!)")

            // Binary: the same tensor as raw little-endian bytes, asked back in binary.
            let tensorBytes = try binaryBytes(datatype, data)
            let head = #"{"inputs":[{"name":"x","datatype":"\#(datatype.rawValue)","shape":[1,4],"parameters":{"binary_data_size":\#(tensorBytes.count)}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}"#
            let binary = try client.send("POST", "/v2/models/\(model)/infer", body: Array(head.utf8) + tensorBytes,
                                         headers: [("Inference-Header-Content-Length", String(head.utf8.count))])
            #expect(binary.status == 200, "\(datatype): \(String(decoding: binary.body, as: UTF8.self))")
            guard let lengthText = binary.headers["Inference-Header-Content-Length"], let length = Int(lengthText) else {
                Issue.record("\(datatype): no Inference-Header-Content-Length in the response")
                continue
            }
            let json = try JSONSerialization.jsonObject(with: Data(binary.body[0..<length])) as! [String: Any]
            let size = (((json["outputs"] as! [[String: Any]])[0]["parameters"] as? [String: Any])?["binary_data_size"] as? Int)
            #expect(size == tensorBytes.count)
            #expect(Array(binary.body[length...]) == tensorBytes, "\(datatype): binary output differs")
        }
    }

    /// The Triton binary form of the comma-separated values.
    func binaryBytes(_ datatype: DataType, _ data: String) throws -> [UInt8] {
        let values = try JSONSerialization.jsonObject(with: Data("[\(data)]".utf8)) as! [Any]
        var out: [UInt8] = []
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        for value in values {
            let text = "\(value)"
            switch datatype {
            case .bool: out.append((value as! Bool) ? 1 : 0)
            case .uint8: le(UInt8(text)!)
            case .uint16: le(UInt16(text)!)
            case .uint32: le(UInt32(text)!)
            case .uint64: le(UInt64(text)!)
            case .int8: le(Int8(text)!)
            case .int16: le(Int16(text)!)
            case .int32: le(Int32(text)!)
            case .int64: le(Int64(text)!)
            case .fp16: le(Float16(Float(text)!).bitPattern)
            case .bf16: le(BFloat16(Float(text)!).bitPattern)
            case .fp32: le(Float(text)!.bitPattern)
            case .fp64: le(Double(text)!.bitPattern)
            case .bytes:
                let bytes = Array((value as! String).utf8)
                le(UInt32(bytes.count))
                out += bytes
            }
        }
        return out
    }

    @Test("the digits classifier answers over the socket with exactly scikit-learn's labels on the whole test split")
    func digitsLabels() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let data = FileManager.default.contents(atPath: "\(fixtures)/digits_test.json")!
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let features = (object["features"] as! [[Double]])
        let expected = (object["logreg_predictions"] as! [NSNumber]).map(\.int64Value)
        var labels: [Int64] = []
        for row in features {
            let response = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(row.map(Float.init)).utf8))
            #expect(response.status == 200)
            labels.append(label(of: response) ?? -1)
        }
        #expect(labels == expected)
        // Nested and batched data, the routing decision and the hash in the response parameters.
        let batch = "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[2,64],\"data\":[\(features[0].map { String(Int($0)) }.joined(separator: ",")),\(features[1].map { String(Int($0)) }.joined(separator: ","))]}]}"
        let response = try client.send("POST", "/v2/models/digits/infer", body: Array(batch.utf8))
        let answer = try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
        let parameters = answer["parameters"] as! [String: Any]
        #expect(parameters["routing"] as? String == "production")
        #expect((parameters["sha256"] as? String)?.count == 64)
        let outputs = answer["outputs"] as! [[String: Any]]
        #expect(outputs.map { $0["name"] as! String } == ["label", "probabilities"])
        #expect((outputs[0]["data"] as! [NSNumber]).map(\.int64Value) == Array(expected[0..<2]))
    }

    @Test("every error status: 400 for bad requests, 404 for unknown models, versions and paths, 405, 415, 500 for a model failure, 503 for a version not loaded")
    func errors() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let good = digitsBody(try digitsRow(0).0)
        let cases: [(String, String, String?, [(String, String)], Int, String)] = [
            ("POST", "/v2/models/digits/infer", "{", [], 400, "invalid inference request"),
            ("POST", "/v2/models/digits/infer", "[]", [], 400, "must be a JSON object"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[]}"#, [], 400, "no inputs"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[{"name":"input","datatype":"FP99","shape":[1,64],"data":[]}]}"#, [], 400, "unknown datatype 'FP99'"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[{"name":"input","datatype":"INT64","shape":[1,4],"data":[1,2,3,4]}]}"#, [], 400, "input"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[{"name":"nope","datatype":"FP32","shape":[1,1],"data":[1]}]}"#, [], 400, "nope"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,2],"data":[1,"a"]}]}"#, [], 400, "expected a number"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,2],"data":[1,2,3]}]}"#, [], 400, "needs 2 elements"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,2],"data":[1e39,0]}]}"#, [], 400, "number out of range for FP32"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[{"name":"input","datatype":"FP64","shape":[1,2],"data":[-1e999,0]}]}"#, [], 400, "number out of range for FP64"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[{"name":"input","datatype":"FP16","shape":[1,2],"data":[70000,0]}]}"#, [], 400, "number out of range for FP16"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[{"name":"input","datatype":"INT8","shape":[1,2],"data":[300,0]}]}"#, [], 400, "out of range"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,2],"data":[1,2]}],"extra":1}"#, [], 400, "unknown key 'extra'"),
            ("POST", "/v2/models/digits/infer", #"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,64],"parameters":{"binary_data_size":256}}]}"#, [], 400, "no Inference-Header-Content-Length"),
            ("POST", "/v2/models/digits/infer", good.replacingOccurrences(of: "\"label\"", with: "\"nolabel\""), [], 400, "nolabel"),
            ("POST", "/v2/models/digits/infer", good, [("Inference-Header-Content-Length", "99999")], 400, "outside the body"),
            ("POST", "/v2/models/digits/infer", good, [("Content-Encoding", "gzip")], 415, "gzip"),
            ("POST", "/v2/models/nope/infer", good, [], 404, "model 'nope' not found"),
            ("POST", "/v2/models/digits/versions/7/infer", good, [], 404, "model 'digits' version 7 not found"),
            ("POST", "/v2/models/broken/versions/1/infer", good, [], 503, "model 'broken' version 1 is not loaded (failed)"),
            ("GET", "/v2/models/digits/infer", nil, [], 405, "not allowed"),
            ("GET", "/v2/nothing", nil, [], 404, "no endpoint"),
            ("GET", "/v2/models/nope", nil, [], 404, "not found"),
            ("GET", "/v2/models/nope/ready", nil, [], 404, "not found"),
        ]
        for (method, path, body, headers, status, fragment) in cases {
            let response = try client.send(method, path, body: body.map { Array($0.utf8) }, headers: headers)
            let text = String(decoding: response.body, as: UTF8.self)
            #expect(response.status == status, "\(method) \(path) \(body?.prefix(80) ?? ""): \(text)")
            #expect(text.hasPrefix("{\"error\":") && text.contains(fragment), "\(path): \(text)")
        }
        // A run-time failure inside the model (feature 0 outside 0...16) is a 500 that names the version.
        var features = try digitsRow(0).0
        features[0] = 99
        let failing = try client.send("POST", "/v2/models/faulty/infer", body: Array(digitsBody(features).utf8))
        #expect(failing.status == 500)
        #expect(String(decoding: failing.body, as: UTF8.self).contains("model 'faulty' version 1"))
    }

    @Test("server metadata, health, model metadata and readiness")
    func metadata() throws {
        let registry = try registry()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let (_, server) = try client.json("GET", "/v2")
        #expect(server["name"] as? String == "registryd" && (server["extensions"] as? [String])?.contains("binary_tensor_data") == true)
        #expect(try client.send("GET", "/v2/health/live").status == 200)
        #expect(try client.send("GET", "/v2/health/ready").status == 200)
        let (status, model) = try client.json("GET", "/v2/models/digits")
        #expect(status == 200 && model["platform"] as? String == "onnxruntime_onnx" && model["versions"] as? [String] == ["1"])
        let inputs = model["inputs"] as! [[String: Any]]
        #expect(inputs[0]["name"] as? String == "input" && inputs[0]["datatype"] as? String == "FP32" && inputs[0]["shape"] as? [Int] == [-1, 64])
        #expect(try client.json("GET", "/v2/models/digits/versions/1").0 == 200)
        #expect(try client.json("GET", "/v2/models/digits/versions/1/ready").0 == 200)
        #expect(try client.json("GET", "/v2/models/digits/ready").1["ready"] as? Bool == true)
    }

    @Test("TCP serves inference and health; control endpoints answer 403 there")
    func tcp() throws {
        let registry = try registry(listen: true)
        let port = try #require(registry.daemon!.tcpPort)
        let client = try HTTPTestClient(tcpPort: port)
        let (features, expected, _) = try digitsRow(5)
        let response = try client.send("POST", "/v2/models/digits/infer", body: Array(digitsBody(features).utf8))
        #expect(response.status == 200 && label(of: response) == expected)
        for path in ["/v1/models", "/v1/status", "/v1/anything"] {
            let (status, object) = try client.json("GET", path)
            #expect(status == 403 && (object["error"] as? String)?.contains("only on the control socket") == true)
        }
        #expect(try client.json("POST", "/v1/models/digits/promote", #"{"version": 1}"#).0 == 403)
    }

    @Test("split 90/10 over 20,000 keyed requests lands within 1 point, and no key leaves the canary as it goes 1, 5, 25, 50, 100")
    func split() throws {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .ready, keepPrevious: 2, requireSignature: false)])
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 3, bytes: modelBytes("digits_logreg.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 4, bytes: modelBytes("digits_mlp.onnx"))
        try registry.start()
        #expect(registry.waitForState("digits", 4, [.ready]) != nil)
        let lifecycle = registry.daemon!.lifecycle
        let router = registry.daemon!.router
        let keys = (0..<20_000).map { "user-\($0)" }
        _ = try lifecycle.setSplit(model: "digits", weights: [3: 90, 4: 10], actor: "test", reason: "canary")
        let arms = try keys.map { try router.resolve(model: "digits", routingKey: $0).0.version }
        let canaryShare = Double(arms.filter { $0 == 4 }.count) / Double(keys.count) * 100
        print("split 90/10: \(String(format: "%.2f", canaryShare))% of 20,000 keys on the canary")
        #expect(abs(canaryShare - 10) <= 1)
        // Same key, same arm, every time.
        #expect(try keys.prefix(500).allSatisfy { try router.resolve(model: "digits", routingKey: $0).0.version == arms[Int($0.dropFirst(5))!] })
        var inCanary = Set<String>()
        for percent in [1, 5, 25, 50, 100] {
            let weights = percent == 100 ? [4: 100] : [3: 100 - percent, 4: percent]
            _ = try lifecycle.setSplit(model: "digits", weights: weights, actor: "test", reason: "step \(percent)")
            let now = Set(try keys.filter { try router.resolve(model: "digits", routingKey: $0).0.version == 4 })
            #expect(inCanary.isSubset(of: now), "keys left the canary at \(percent)%")
            #expect(abs(Double(now.count) / 200 - Double(percent)) <= 1, "\(now.count) keys at \(percent)%")
            inCanary = now
        }
        // Over the socket: the header routes, and the response says which arm and that it was sticky.
        _ = try lifecycle.setSplit(model: "digits", weights: [3: 50, 4: 50], actor: "test", reason: "half")
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let body = Array(digitsBody(try digitsRow(0).0).utf8)
        let response = try client.send("POST", "/v2/models/digits/infer", body: body, headers: [("X-Routing-Key", "user-7")])
        let expectedArm = try router.resolve(model: "digits", routingKey: "user-7").0.version
        #expect(servedVersion(of: response) == expectedArm)
        #expect(String(decoding: response.body, as: UTF8.self).contains("\"routing\":\"split arm \(expectedArm) (sticky)\""))
        // Bad splits are refused.
        #expect(throws: RegistryError.self) { try lifecycle.setSplit(model: "digits", weights: [3: 50, 4: 40], actor: "t", reason: "") }
        #expect(throws: RegistryError.self) { try lifecycle.setSplit(model: "digits", weights: [3: 50, 9: 50], actor: "t", reason: "") }
        // A restart brings the split back.
        registry.stop()
        try registry.start()
        #expect(try registry.daemon!.router.resolve(model: "digits", routingKey: "user-7").0.version == expectedArm)
    }
}

@Suite("metrics")
struct MetricsTests {
    @Test("/metrics counts requests, errors, latency buckets and routing per version, in Prometheus text format, on both listeners")
    func metrics() throws {
        let registry = TestRegistry()
        registry.config.listen = "127.0.0.1:0"
        registry.config.statsFlushSeconds = 3600  // only the explicit flush below writes
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try registry.start()
        #expect(registry.waitForState("digits", 1, [.live]) != nil)
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let body = Array(digitsBody(try digitsRow(0).0).utf8)
        for _ in 0..<5 { #expect(try client.send("POST", "/v2/models/digits/infer", body: body).status == 200) }
        #expect(try client.send("POST", "/v2/models/nope/infer", body: body).status == 404)
        let response = try HTTPTestClient(tcpPort: try #require(registry.daemon!.tcpPort)).send("GET", "/metrics")
        #expect(response.status == 200 && response.headers["Content-Type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = String(decoding: response.body, as: UTF8.self)
        for line in [
            "registryd_requests_total{model=\"digits\",version=\"1\"} 5",
            "registryd_request_errors_total{model=\"digits\",version=\"1\"} 0",
            "registryd_request_duration_seconds_bucket{model=\"digits\",version=\"1\",le=\"+Inf\"} 5",
            "registryd_request_duration_seconds_count{model=\"digits\",version=\"1\"} 5",
            "registryd_routing_decisions_total{model=\"digits\",decision=\"production\"} 5",
            "registryd_rejected_requests_total{status=\"404\"} 1",
            "registryd_versions{model=\"digits\",state=\"live\"} 1",
            "registryd_production_version{model=\"digits\"} 1",
        ] {
            #expect(text.contains(line + "\n"), "missing '\(line)' in\n\(text)")
        }
        // The serving path wrote nothing to SQLite; a batched flush writes the minute's counts.
        let stats = try HTTPTestClient(unixPath: registry.config.controlSocket)
        #expect(try stats.send("GET", "/v1/models/digits/stats").body == Array("[]".utf8))
        registry.daemon!.lifecycle.flushStats()
        let points = try JSONSerialization.jsonObject(with: Data(try stats.send("GET", "/v1/models/digits/stats?minutes=5").body)) as? [[String: Any]]
        #expect(points?.count == 1 && points?.first?["requests"] as? Int == 5 && points?.first?["version"] as? Int == 1, "\(points ?? [])")
        #expect(try stats.json("GET", "/v1/models/digits/stats?minutes=0").0 == 400)
        #expect(try stats.json("GET", "/v1/models/nope/stats").0 == 404)
        // Prometheus's own checker accepts it (promtool, from Debian's prometheus package).
        let checked = try runWithInput(["/usr/bin/promtool", "check", "metrics"], input: response.body)
        #expect(checked.status == 0, "promtool: \(checked.output)")
        // Every sample belongs to a family declared with HELP and TYPE, and buckets never decrease.
        var declared = Set<String>()
        var last: (String, Int)?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") { declared.insert(String(line.split(separator: " ")[2])) ; continue }
            if line.hasPrefix("#") { continue }
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            let familyName = ["_bucket", "_sum", "_count"].reduce(name) { $0.hasSuffix($1) ? String($0.dropLast($1.count)) : $0 }
            #expect(declared.contains(familyName), "\(name) has no TYPE line")
            if name.hasSuffix("_bucket"), let value = Int(line.split(separator: " ").last!) {
                if let (previous, count) = last, previous == name { #expect(value >= count) }
                last = (name, value)
            }
        }
    }
    @Test("a version no longer loaded leaves /metrics (series stay bounded), and its counts still reach the catalog")
    func retiredVersionsLeaveMetrics() throws {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .live, keepPrevious: 1, requireSignature: false)])
        registry.config.statsFlushSeconds = 3600
        try registry.makeModelDirectory("digits")
        try registry.start()
        let client = try HTTPTestClient(unixPath: registry.config.controlSocket)
        let body = Array(digitsBody(try digitsRow(0).0).utf8)
        for version in 1...4 {
            try dropAtomically(root: registry.root, model: "digits", version: version, bytes: modelBytes("digits_logreg.onnx", variant: version))
            #expect(registry.waitForState("digits", version, [.live]) != nil, "version \(version)")
            for _ in 0..<3 { #expect(try client.send("POST", "/v2/models/digits/infer", body: body).status == 200) }
        }
        // Production 4 and one previous (3) are loaded; 1 and 2 are retired.
        #expect(try #require(registry.daemon!.lifecycle.status().first).loadedVersions == [3, 4])
        let text = String(decoding: try client.send("GET", "/metrics").body, as: UTF8.self)
        for version in [3, 4] {
            #expect(text.contains("registryd_requests_total{model=\"digits\",version=\"\(version)\"} 3\n"), "\(text)")
        }
        for version in [1, 2] {
            #expect(!text.contains("version=\"\(version)\""), "series of unloaded version \(version) still exported:\n\(text)")
        }
        // The per-minute rows of every version, retired ones included, are flushed all the same.
        registry.daemon!.lifecycle.flushStats()
        let points = try JSONSerialization.jsonObject(with: Data(try client.send("GET", "/v1/models/digits/stats?minutes=5").body)) as? [[String: Any]] ?? []
        let byVersion = Dictionary(grouping: points, by: { $0["version"] as? Int ?? 0 }).mapValues { $0.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) } }
        #expect(byVersion == [1: 3, 2: 3, 3: 3, 4: 3], "\(points)")
    }
}
