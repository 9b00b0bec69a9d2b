import Dispatch
import InferenceCodec
import Runtime
import Wire

/// The Open Inference Protocol (KServe v2 REST) endpoints, with Triton's binary tensor data
/// extension:
///
/// `GET /v2`, `/v2/health/live`, `/v2/health/ready`, `GET /v2/models/{m}[/versions/{v}]`,
/// `.../ready`, `POST .../infer`.
///
/// Hot path: the decode (`InferenceCodec`), the prediction (`PredictionService`: routing, the
/// servable's run on the calling worker thread, statistics), the encode. No SQLite, no actor
/// hop. Errors are `{"error": "..."}` with Triton's statuses (`RegistryError.httpStatus`): 400
/// for a bad request, 404 for an unknown model or version, 503 for one that cannot serve now.
public struct InferenceAPI: Sendable {
    let router: Router
    let service: PredictionService
    let isReady: @Sendable () -> Bool

    public init(router: Router, service: PredictionService, isReady: @escaping @Sendable () -> Bool) {
        self.router = router
        self.service = service
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
            guard let mirror = service.mirror else { return infer(request, model: model, version: version) }
            mirror.servingBegan()
            var response = infer(request, model: model, version: version)
            let offer = response.afterSend
            // One closure per request: it offers the mirrored job (if any), then ends the mark.
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
            + "\"inputs\":\(tensors(loaded.servable.signature.inputs)),\"outputs\":\(tensors(loaded.servable.signature.outputs))}"
        return json(200, text)
    }

    private func infer(_ request: HTTPRequest, model: String, version: Int?) -> HTTPResponse {
        let started = DispatchTime.now().uptimeNanoseconds
        if let encoding = request.headers["Content-Encoding"], encoding.lowercased() != "identity" {
            service.reject(status: 415)
            return HTTPResponse.error(415, "Content-Encoding '\(encoding)' is not supported; send the body uncompressed")
        }
        var headerLength: Int?
        if let text = request.headers["Inference-Header-Content-Length"] {
            guard let value = Int(text), value >= 0 else {
                service.reject(status: 400)
                return HTTPResponse.error(400, "Inference-Header-Content-Length '\(text.prefix(32))' is not a non-negative integer")
            }
            headerLength = value
        }
        let decoded: InferenceRequest
        do throws(InferenceRequest.Failure) {
            decoded = try InferenceRequest.decode(request.body, headerLength: headerLength)
        } catch {
            service.reject(status: 400)
            return HTTPResponse.error(400, error.message)
        }
        let served: PredictionService.Served
        do throws(RegistryError) {
            // Output names are unique (the decoder refuses a name requested twice).
            let classify = Dictionary(uniqueKeysWithValues: (decoded.outputs ?? []).compactMap { output in output.classification.map { (output.name, $0) } })
            served = try service.predict(model: model, version: version, routingKey: request.headers["X-Routing-Key"] ?? decoded.routingKey,
                                         inputs: decoded.inputs, outputs: decoded.outputs?.map(\.name), classify: classify, started: started)
        } catch {
            return HTTPResponse.error(error.httpStatus, error.message)
        }
        var response = InferenceResponse.encode(decoded, outputs: served.prediction.outputs, order: served.version.outputNames,
                                                preamble: served.version.preamble, routing: served.decision.description,
                                                parameters: served.prediction.steps.isEmpty ? [] : [("steps", PredictionStep.jsonStringLiteral(served.prediction.steps))])
        response.afterSend = served.offerShadow
        return response
    }
}
