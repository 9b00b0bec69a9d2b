import Foundation
import Runtime
import Wire

/// The Open Inference Protocol (KServe v2 REST) endpoints, with Triton's binary tensor data
/// extension:
///
/// `GET /v2`, `/v2/health/live`, `/v2/health/ready`, `GET /v2/models/{m}[/versions/{v}]`,
/// `.../ready`, `POST .../infer`.
///
/// Hot path: one router read (a lock and a few reference counts), the decode, ONNX Runtime's
/// `Run` on the calling worker thread, the encode, and an in-memory statistics update. No
/// SQLite, no actor hop. Errors are `{"error": "..."}` with Triton's statuses: 400 for a bad
/// request, 404 for an unknown model or version, 503 for one that cannot serve now.
public struct InferenceAPI: Sendable {
    let router: Router
    let stats: ServingStats
    let mirror: ShadowMirror?
    let isReady: @Sendable () -> Bool

    public init(router: Router, stats: ServingStats, mirror: ShadowMirror? = nil, isReady: @escaping @Sendable () -> Bool) {
        self.router = router
        self.stats = stats
        self.mirror = mirror
        self.isReady = isReady
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        let segments = request.pathSegments  // ["v2", ...]
        let method = request.method
        switch segments.count {
        case 1:
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(request) }
            return json(200, "{\"name\":\"registryd\",\"version\":\(JSONText.quoted(Daemon.version)),\"extensions\":[\"binary_tensor_data\"]}")
        case 3 where segments[1] == "health" && segments[2] == "live":
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(request) }
            return json(200, "{\"live\":true}")
        case 3 where segments[1] == "health" && segments[2] == "ready":
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(request) }
            return isReady() ? json(200, "{\"ready\":true}") : HTTPResponse.error(503, "registryd is starting: models are still loading")
        default:
            break
        }
        guard segments.count >= 3, segments[1] == "models" else {
            return HTTPResponse.error(404, "no endpoint \(method) \(request.path)")
        }
        let model = segments[2]
        var rest = Array(segments.dropFirst(3))
        var version: Int?
        if rest.first == "versions" {
            guard rest.count >= 2 else { return HTTPResponse.error(404, "no endpoint \(method) \(request.path)") }
            guard let v = Int(rest[1]), v > 0 else { return HTTPResponse.error(400, "version '\(rest[1])' is not a positive integer") }
            version = v
            rest.removeFirst(2)
        }
        switch rest {
        case []:
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(request) }
            return metadata(model: model, version: version)
        case ["ready"]:
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(request) }
            do throws(RegistryError) {
                _ = try router.resolve(model: model, version: version)
                return json(200, "{\"name\":\(JSONText.quoted(model)),\"ready\":true}")
            } catch {
                return HTTPResponse.error(error.httpStatus, error.message)
            }
        case ["infer"]:
            guard method == "POST" else { return methodNotAllowed(request) }
            // Marked for the shadow mirror, which runs only in the gaps between inferences: the
            // gap opens once the answer is written (the server runs `afterSend` then).
            guard let mirror else { return infer(request, model: model, version: version) }
            mirror.servingBegan()
            var response = infer(request, model: model, version: version)
            let offer = response.afterSend
            response.afterSend = {
                offer?()
                mirror.servingEnded()
            }
            return response
        default:
            return HTTPResponse.error(404, "no endpoint \(method) \(request.path)")
        }
    }

    private func json(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse.json(status, Array(text.utf8))
    }

    private func methodNotAllowed(_ request: HTTPRequest) -> HTTPResponse {
        var response = HTTPResponse.error(405, "method \(request.method) is not allowed on \(request.path)")
        response.headers.add("Allow", request.path.hasSuffix("/infer") ? "POST" : "GET, HEAD")
        return response
    }

    private func metadata(model: String, version: Int?) -> HTTPResponse {
        let loaded: LoadedVersion
        do throws(RegistryError) {
            loaded = try router.resolve(model: model, version: version).0
        } catch {
            return HTTPResponse.error(error.httpStatus, error.message)
        }
        let versions = router.current.models[model].map { $0.versions.keys.sorted().map { JSONText.quoted(String($0)) } } ?? []
        func tensors(_ infos: [TensorInfo]) -> String {
            "[" + infos.map { info in
                "{\"name\":\(JSONText.quoted(info.name)),\"datatype\":\"\(DataType(info.elementType).rawValue)\",\"shape\":[\(info.shape.map { String($0.value) }.joined(separator: ","))]}"
            }.joined(separator: ",") + "]"
        }
        let text = "{\"name\":\(JSONText.quoted(model)),\"versions\":[\(versions.joined(separator: ","))],\"platform\":\"onnxruntime_onnx\","
            + "\"parameters\":{\"version\":\(loaded.version),\"sha256\":\"\(loaded.sha256)\"},"
            + "\"inputs\":\(tensors(loaded.session.inputs)),\"outputs\":\(tensors(loaded.session.outputs))}"
        return json(200, text)
    }

    private func infer(_ request: HTTPRequest, model: String, version: Int?) -> HTTPResponse {
        let started = DispatchTime.now().uptimeNanoseconds
        if let encoding = request.headers["Content-Encoding"], encoding.lowercased() != "identity" {
            stats.reject(status: 415)
            return HTTPResponse.error(415, "Content-Encoding '\(encoding)' is not supported; send the body uncompressed")
        }
        var headerLength: Int?
        if let text = request.headers["Inference-Header-Content-Length"] {
            guard let value = Int(text), value >= 0 else {
                stats.reject(status: 400)
                return HTTPResponse.error(400, "Inference-Header-Content-Length '\(text.prefix(32))' is not a non-negative integer")
            }
            headerLength = value
        }
        let decoded: InferenceRequest
        do throws(InferenceRequest.Failure) {
            decoded = try InferenceRequest.decode(request.body, headerLength: headerLength)
        } catch {
            stats.reject(status: 400)
            return HTTPResponse.error(400, error.message)
        }
        let routingKey = request.headers["X-Routing-Key"] ?? decoded.routingKey
        let loaded: LoadedVersion
        let decision: RoutingDecision
        let shadow: RoutingTable.Shadow?
        do throws(RegistryError) {
            (loaded, decision, shadow) = try router.route(model: model, version: version, routingKey: routingKey)
        } catch {
            stats.reject(status: error.httpStatus)
            return HTTPResponse.error(error.httpStatus, error.message)
        }
        let outputs: [String: Tensor]
        // The run alone is timed only for a mirrored request (the shadow report compares run times).
        let runStarted = shadow == nil ? 0 : DispatchTime.now().uptimeNanoseconds
        do throws(RuntimeError) {
            outputs = try loaded.session.run(decoded.inputs, outputs: decoded.outputs?.map(\.name))
        } catch {
            let status: Int = switch error.code {
            case .unknownName, .missingInput, .typeMismatch, .shapeMismatch, .invalidTensor: 400
            default: 500
            }
            record(loaded, decision, started, failed: status == 500)
            return HTTPResponse.error(status, "model '\(model)' version \(loaded.version): \(error.message)")
        }
        var response = encode(decoded, outputs: outputs, model: model, loaded: loaded, decision: decision)
        record(loaded, decision, started, failed: false)
        if let shadow, let mirror, mirror.admit(shadow.tally) {
            // Once the answer is written; the mirror only queues (or drops) the job. A mirror
            // that would drop it (paused, over budget, full) was told by `admit`, with atomics
            // alone: no job is built.
            let runSeconds = Double(DispatchTime.now().uptimeNanoseconds - runStarted) / 1e9
            let job = ShadowMirror.Job(shadow: shadow.version, inputs: decoded.inputs, outputNames: decoded.outputs?.map(\.name), primary: outputs,
                                       primaryOrder: loaded.outputNames, primarySeconds: runSeconds)
            let tally = shadow.tally
            response.afterSend = { mirror.offer(job, tally: tally) }
        }
        return response
    }

    private func record(_ loaded: LoadedVersion, _ decision: RoutingDecision, _ started: UInt64, failed: Bool) {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let arm: String = switch decision {
        case .pinned: "pinned"
        case .production: "production"
        case .split(let version, _): "split:\(version)"
        }
        stats.record(model: loaded.model, version: loaded.version, seconds: seconds, failed: failed, decision: arm)
    }

    /// The v2 response: JSON, then the binary data of outputs asked for in binary.
    private func encode(_ request: InferenceRequest, outputs: [String: Tensor], model: String, loaded: LoadedVersion, decision: RoutingDecision) -> HTTPResponse {
        let names = request.outputs?.map(\.name) ?? loaded.outputNames
        var head = ByteWriter()
        head.append(loaded.responseOpening)
        if let id = request.id {
            head.append(",\"id\":")
            head.append(JSONText.quoted(id))
        }
        head.append(loaded.responseParameters)
        head.append(JSONText.quoted(decision.description))
        head.append("},\"outputs\":[")
        var binary: [UInt8] = []
        var written = 0
        for name in names {
            guard let tensor = outputs[name] else { continue }
            let wantsBinary = request.outputs?.first { $0.name == name }?.binary ?? request.binaryOutputDefault
            if written > 0 { head.append(",") }
            written += 1
            head.append("{\"name\":")
            head.append(JSONText.quoted(name))
            head.append(",\"datatype\":\"")
            head.append(DataType(tensor.elementType).rawValue)
            head.append("\",\"shape\":[")
            for (i, dimension) in tensor.shape.enumerated() {
                if i > 0 { head.bytes.append(UInt8(ascii: ",")) }
                JSONText.appendInteger(dimension, to: &head.bytes)
            }
            head.append("]")
            if wantsBinary {
                let before = binary.count
                TensorText.appendBinary(tensor, to: &binary)
                head.append(",\"parameters\":{\"binary_data_size\":\(binary.count - before)}}")
            } else {
                head.append(",\"data\":")
                TensorText.appendJSON(tensor, to: &head)
                head.append("}")
            }
        }
        head.append("]}")
        if binary.isEmpty {
            return HTTPResponse.json(200, head.bytes)
        }
        var response = HTTPResponse(status: 200, headers: HTTPHeaders([
            ("Content-Type", "application/octet-stream"),
            ("Inference-Header-Content-Length", String(head.bytes.count)),
        ]))
        response.body = head.bytes + binary
        return response
    }
}

/// A growable byte buffer for building responses without intermediate strings.
struct ByteWriter {
    var bytes: [UInt8] = []

    init() {
        bytes.reserveCapacity(512)
    }

    mutating func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    mutating func append(_ raw: [UInt8]) {
        bytes.append(contentsOf: raw)
    }
}

/// Tensor contents as v2 JSON `data` (flat, row-major) or as Triton binary data.
enum TensorText {
    static func appendJSON(_ tensor: Tensor, to writer: inout ByteWriter) {
        writer.bytes.append(UInt8(ascii: "["))
        func list<T>(_ values: [T], _ format: (T) -> String) {
            for (i, v) in values.enumerated() {
                if i > 0 { writer.bytes.append(UInt8(ascii: ",")) }
                writer.append(format(v))
            }
        }
        // `description`, not interpolation: a short number stays a small (inline) String.
        func float(_ v: Double) -> String { v.isFinite ? v.description : "null" }
        func integers<T: BinaryInteger>(_ values: [T]) {
            for (i, v) in values.enumerated() {
                if i > 0 { writer.bytes.append(UInt8(ascii: ",")) }
                JSONText.appendInteger(v, to: &writer.bytes)
            }
        }
        do {
            switch tensor.elementType {
            case .float: list(try tensor.scalars(as: Float.self)) { $0.isFinite ? $0.description : "null" }
            case .double: list(try tensor.scalars(as: Double.self), float)
            case .float16: list(try tensor.scalars(as: Float16.self)) { float(Double($0)) }
            case .bfloat16: list(try tensor.scalars(as: BFloat16.self)) { float(Double($0.floatValue)) }
            case .int8: integers(try tensor.scalars(as: Int8.self))
            case .int16: integers(try tensor.scalars(as: Int16.self))
            case .int32: integers(try tensor.scalars(as: Int32.self))
            case .int64: integers(try tensor.scalars(as: Int64.self))
            case .uint8: integers(try tensor.scalars(as: UInt8.self))
            case .uint16: integers(try tensor.scalars(as: UInt16.self))
            case .uint32: integers(try tensor.scalars(as: UInt32.self))
            case .uint64: integers(try tensor.scalars(as: UInt64.self))
            case .bool: list(try tensor.scalars(as: Bool.self)) { $0 ? "true" : "false" }
            case .string: list(try tensor.byteStrings()) { JSONText.quoted(String(decoding: $0, as: UTF8.self)) }
            }
        } catch {
            // The element type was matched above, so reading cannot fail.
            preconditionFailure("tensor of \(tensor.elementType) could not be read as itself: \(error)")
        }
        writer.bytes.append(UInt8(ascii: "]"))
    }

    static func appendBinary(_ tensor: Tensor, to out: inout [UInt8]) {
        if tensor.elementType == .string {
            for element in (try? tensor.byteStrings()) ?? [] {
                let n = UInt32(element.count)
                out.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)])
                out.append(contentsOf: element)
            }
            return
        }
        _ = try? tensor.withUnsafeBytes { out.append(contentsOf: $0) }
    }
}
