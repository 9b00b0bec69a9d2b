import Foundation
import Wire

/// Routes each HTTP request to the API that answers it: `/v1` (control), `/v2` (inference),
/// `/metrics` (Prometheus text), `/` (the status page). Control endpoints exist only on the
/// control socket: on the TCP serving listener they answer 403, whatever the path below `/v1`,
/// except that `tcp_status_page` opens the status page and the read-only (`GET`) control
/// endpoints it reads there.
public struct Endpoints: Sendable {
    let control: ControlAPI
    let inference: InferenceAPI
    let metrics: MetricsExporter
    /// Whether the TCP listener serves the status page and read-only control endpoints.
    let tcpStatusPage: Bool
    /// The TLS listener's counters, appended to `/metrics` (nothing while TLS is off).
    let tlsMetrics: TLSMetrics?

    public init(control: ControlAPI, inference: InferenceAPI, metrics: MetricsExporter, tcpStatusPage: Bool = false, tlsMetrics: TLSMetrics? = nil) {
        self.control = control
        self.inference = inference
        self.metrics = metrics
        self.tcpStatusPage = tcpStatusPage
        self.tlsMetrics = tlsMetrics
    }

    public func handle(_ request: HTTPRequest, peer: HTTPServer.Peer) -> HTTPResponse {
        let path = request.path
        if path == "/v1" || path.hasPrefix("/v1/") {
            guard peer.listener == .control || (tcpStatusPage && (request.method == "GET" || request.method == "HEAD")) else {
                return HTTPResponse.error(403, tcpStatusPage ? "this listener is read-only: control commands are accepted only on the control socket"
                                              : "control endpoints are served only on the control socket")
            }
            return control.handle(request, actor: peer.description)
        }
        if path == "/v2" || path.hasPrefix("/v2/") {
            return inference.handle(request)
        }
        if path == "/metrics" && (request.method == "GET" || request.method == "HEAD") {
            var response = metrics.render()
            if let tls = tlsMetrics?.render(), !tls.isEmpty { response.body += Array(tls.utf8) }
            return response
        }
        if path == "/" && (request.method == "GET" || request.method == "HEAD") {
            guard peer.listener == .control || tcpStatusPage else {
                return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")]),
                                    body: Array("registryd \(Daemon.version)\ninference: /v2 (KServe v2), metrics: /metrics; the status page and the control API are on the control socket\n".utf8))
            }
            return HTTPResponse(status: 200, headers: HTTPHeaders([
                ("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                // Everything the page needs is inline or same-origin; nothing may be fetched elsewhere.
                ("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:"),
                ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
            ]), body: StatusPage.bytes)
        }
        return HTTPResponse.error(404, "no endpoint \(request.method) \(path); see docs/API.md")
    }
}
