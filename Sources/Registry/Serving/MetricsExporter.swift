import Foundation
import Synchronization
import Wire

/// `GET /metrics` in the Prometheus text exposition format (version 0.0.4): request counts,
/// errors and latency histograms per model version, routing decisions per arm, refused
/// requests by status, version states and open connections.
///
/// Reads only in-memory state (``ServingStats``, the lifecycle's snapshot, the server's
/// counters): scraping never touches SQLite.
public final class MetricsExporter: Sendable {
    let stats: ServingStats
    let lifecycle: Lifecycle
    /// The server's open connections and requests in flight (set once the server exists).
    let connections: Mutex<(@Sendable () -> HTTPServer.Counts)?>

    public init(stats: ServingStats, lifecycle: Lifecycle) {
        self.stats = stats
        self.lifecycle = lifecycle
        self.connections = Mutex(nil)
    }

    func render() -> HTTPResponse {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func labels(_ pairs: [(String, String)]) -> String {
            "{" + pairs.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        let snapshot = stats.snapshot()
        family("registryd_info", "gauge", "The running build.")
        out += "registryd_info\(labels([("version", Daemon.version)])) 1\n"
        family("registryd_requests_total", "counter", "Inference requests answered, by model version.")
        for s in snapshot.series { out += "registryd_requests_total\(labels([("model", s.model), ("version", String(s.version))])) \(s.series.requests)\n" }
        family("registryd_request_errors_total", "counter", "Inference requests that failed inside the model, by model version.")
        for s in snapshot.series { out += "registryd_request_errors_total\(labels([("model", s.model), ("version", String(s.version))])) \(s.series.errors)\n" }
        family("registryd_request_duration_seconds", "histogram", "Inference latency inside registryd (decode, run, encode), by model version.")
        for s in snapshot.series {
            let base = [("model", s.model), ("version", String(s.version))]
            var cumulative = 0
            for (bound, count) in zip(ServingStats.bounds, s.series.buckets) {
                cumulative += count
                out += "registryd_request_duration_seconds_bucket\(labels(base + [("le", "\(bound)")])) \(cumulative)\n"
            }
            out += "registryd_request_duration_seconds_bucket\(labels(base + [("le", "+Inf")])) \(s.series.requests)\n"
            out += "registryd_request_duration_seconds_sum\(labels(base)) \(s.series.seconds)\n"
            out += "registryd_request_duration_seconds_count\(labels(base)) \(s.series.requests)\n"
        }
        family("registryd_routing_decisions_total", "counter", "How inference requests were routed, by model and arm.")
        for (model, decisions) in snapshot.decisions.sorted(by: { $0.key < $1.key }) {
            for (decision, count) in decisions.sorted(by: { $0.key < $1.key }) {
                out += "registryd_routing_decisions_total\(labels([("model", model), ("decision", decision)])) \(count)\n"
            }
        }
        family("registryd_rejected_requests_total", "counter", "Inference requests refused before a version ran them, by HTTP status.")
        for (status, count) in snapshot.rejected.sorted(by: { $0.key < $1.key }) {
            out += "registryd_rejected_requests_total\(labels([("status", status)])) \(count)\n"
        }
        let models = lifecycle.snapshot().models
        family("registryd_versions", "gauge", "Versions in the catalog, by model and state.")
        for model in models {
            var counts: [String: Int] = [:]
            for version in model.versions { counts[version.state.rawValue, default: 0] += 1 }
            for (state, count) in counts.sorted(by: { $0.key < $1.key }) {
                out += "registryd_versions\(labels([("model", model.name), ("state", state)])) \(count)\n"
            }
        }
        family("registryd_version_file_changed", "gauge",
               "1 for each version whose file on disk is no longer the admitted bytes (production serves them from memory; a restart cannot load them).")
        for model in models {
            for version in model.versions where version.file == .changed {
                out += "registryd_version_file_changed\(labels([("model", model.name), ("version", String(version.version)), ("state", version.state.rawValue)])) 1\n"
            }
        }
        family("registryd_loaded_versions", "gauge", "Versions with a loaded session, by model.")
        for model in models { out += "registryd_loaded_versions\(labels([("model", model.name)])) \(model.loadedVersions.count)\n" }
        family("registryd_production_version", "gauge", "The production version of each model (0 when none).")
        for model in models { out += "registryd_production_version\(labels([("model", model.name)])) \(model.aliases["production"] ?? 0)\n" }
        let shadows = lifecycle.mirror.reports().values.sorted { $0.model < $1.model }
        func shadowFamily(_ name: String, _ type: String, _ help: String, _ value: (ShadowMirror.Report) -> String?) {
            family(name, type, help)
            for r in shadows {
                if let v = value(r) { out += "\(name)\(labels([("model", r.model), ("version", String(r.version))])) \(v)\n" }
            }
        }
        shadowFamily("registryd_shadow_mirrored_total", "counter", "Requests offered to the model's shadow version.") { String($0.mirrored) }
        shadowFamily("registryd_shadow_dropped_total", "counter", "Mirrored requests dropped because the shadow queue was full.") { String($0.dropped) }
        shadowFamily("registryd_shadow_failed_total", "counter", "Mirrored requests the shadow failed to answer comparably.") { String($0.failed) }
        shadowFamily("registryd_shadow_compared_rows_total", "counter", "Rows whose shadow answer was compared with the served answer.") { String($0.comparedRows) }
        shadowFamily("registryd_shadow_agreed_rows_total", "counter", "Compared rows whose top-1 answer agreed with the served one.") { String($0.agreedRows) }
        shadowFamily("registryd_shadow_agreement_ratio", "gauge", "Agreed over compared rows (top-1 comparisons).") { $0.agreement.map { "\($0)" } }
        shadowFamily("registryd_shadow_max_abs_diff", "gauge", "Largest absolute difference between shadow and served numeric answers.") {
            $0.maxAbsDiff.map { $0.isFinite ? "\($0)" : "+Inf" }
        }
        family("registryd_shadow_run_duration_seconds", "histogram", "Model run time of the shadow version on mirrored requests.")
        for r in shadows {
            let base = [("model", r.model), ("version", String(r.version))]
            var cumulative = 0
            for (bound, count) in zip(ServingStats.bounds, r.shadowBuckets) {
                cumulative += count
                out += "registryd_shadow_run_duration_seconds_bucket\(labels(base + [("le", "\(bound)")])) \(cumulative)\n"
            }
            out += "registryd_shadow_run_duration_seconds_bucket\(labels(base + [("le", "+Inf")])) \(r.runs)\n"
            out += "registryd_shadow_run_duration_seconds_sum\(labels(base)) \(r.shadowSeconds)\n"
            out += "registryd_shadow_run_duration_seconds_count\(labels(base)) \(r.runs)\n"
        }
        // Pipelines: each step's time and the pipeline's own (its total minus its steps).
        let pipelines = lifecycle.router.current.models.flatMap { _, routes in routes.versions.values }
            .compactMap { $0.servable as? PipelineServable }.sorted { ($0.provenance.model, $0.provenance.version) < ($1.provenance.model, $1.provenance.version) }
        if !pipelines.isEmpty {
            family("registryd_pipeline_step_seconds", "summary", "Time in each step of a pipeline version (its model's run, routing included).")
            for pipeline in pipelines {
                guard let sums = pipeline.timings?.snapshot else { continue }
                for (step, sum) in sums.steps.sorted(by: { $0.key < $1.key }) {
                    let base = labels([("model", pipeline.provenance.model), ("version", String(pipeline.provenance.version)), ("step", step)])
                    out += "registryd_pipeline_step_seconds_sum\(base) \(sum.seconds)\nregistryd_pipeline_step_seconds_count\(base) \(sum.count)\n"
                }
            }
            family("registryd_pipeline_overhead_seconds", "summary", "A pipeline's own time per request: its total minus its steps (checking inputs, splitting and merging rows).")
            for pipeline in pipelines {
                guard let sum = pipeline.timings?.snapshot.overhead else { continue }
                let base = labels([("model", pipeline.provenance.model), ("version", String(pipeline.provenance.version))])
                out += "registryd_pipeline_overhead_seconds_sum\(base) \(sum.seconds)\nregistryd_pipeline_overhead_seconds_count\(base) \(sum.count)\n"
            }
        }
        if let counts = connections.withLock({ $0 })?() {
            family("registryd_http_connections", "gauge", "Open HTTP connections.")
            out += "registryd_http_connections \(counts.connections)\n"
            family("registryd_http_requests_in_flight", "gauge", "HTTP requests being handled.")
            out += "registryd_http_requests_in_flight \(counts.inFlight)\n"
            family("registryd_http_busy_polls_total", "counter",
                   "Busy polls of an answered connection (busy_poll_us): hit when the client's next request came within the budget, miss when the budget ran out.")
            out += "registryd_http_busy_polls_total{result=\"hit\"} \(counts.busyPollHits)\n"
            out += "registryd_http_busy_polls_total{result=\"miss\"} \(counts.busyPollMisses)\n"
        }
        return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]), body: Array(out.utf8))
    }

    private func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
