import Foundation
import Wire

/// Routes each HTTP request to the API that answers it: `/v1` (control), `/v2` (inference),
/// `/metrics` (Prometheus text). Control endpoints exist only on the control socket: on the TCP serving
/// listener they answer 403, whatever the path below `/v1`.
public struct Endpoints: Sendable {
    let control: ControlAPI
    let inference: InferenceAPI
    let metrics: MetricsExporter

    public init(control: ControlAPI, inference: InferenceAPI, metrics: MetricsExporter) {
        self.control = control
        self.inference = inference
        self.metrics = metrics
    }

    public func handle(_ request: HTTPRequest, peer: HTTPServer.Peer) -> HTTPResponse {
        let path = request.path
        if path == "/v1" || path.hasPrefix("/v1/") {
            guard peer.listener == .control else {
                return HTTPResponse.error(403, "control endpoints are served only on the control socket")
            }
            return control.handle(request, actor: peer.description)
        }
        if path == "/v2" || path.hasPrefix("/v2/") {
            return inference.handle(request)
        }
        if path == "/metrics" && (request.method == "GET" || request.method == "HEAD") {
            return metrics.render()
        }
        if path == "/" && (request.method == "GET" || request.method == "HEAD") {
            return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")]),
                                body: Array("registryd \(Daemon.version)\ncontrol API: /v1 (see docs/API.md); inference: /v2 (KServe v2)\n".utf8))
        }
        return HTTPResponse.error(404, "no endpoint \(request.method) \(path); see docs/API.md")
    }
}
