import Foundation
import Synchronization

/// What the TLS listener counts, for `/metrics`: handshakes completed (full or resumed),
/// handshakes that failed by reason, certificate reloads applied and refused, and the
/// certificate in force (its expiry time as a gauge, so that an alert can fire weeks ahead).
/// It also writes the log line of a failed handshake, at most one per reason per second (with
/// the number left out since), so that a scanner or a flood cannot fill the log.
///
/// Thread-safety: thread-safe. Completed handshakes, counted on the serving path, are atomics;
/// failures, reloads and the certificate, rare, live behind one `Mutex`.
public final class TLSMetrics: Sendable {
    /// Why a handshake failed: a label value of `registryd_tls_handshake_failures_total`.
    enum FailureReason: String, CaseIterable, Sendable {
        /// The client offered only versions below TLS 1.2.
        case protocolVersion = "protocol_version"
        /// Plain HTTP sent to the TLS port (answered with a plain-text 400).
        case plainHTTP = "plain_http"
        /// Bytes that are not TLS at all.
        case notTLS = "not_tls"
        /// Mutual TLS: the client sent no certificate.
        case noClientCertificate = "no_client_certificate"
        /// Mutual TLS: the client's certificate does not verify against `tls_client_ca`.
        case badClientCertificate = "bad_client_certificate"
        /// No cipher, group or signature algorithm in common.
        case noSharedCipher = "no_shared_cipher"
        /// The client offered ALPN protocols, none of them `http/1.1`.
        case noApplicationProtocol = "no_application_protocol"
        /// The client refused the server (an alert: most often, it does not trust the certificate).
        case peerAlert = "peer_alert"
        /// Not completed within `request_timeout_seconds`.
        case timeout
        /// The client closed or reset the connection before the handshake completed.
        case closed
        case other
    }

    private let full = Atomic<Int>(0)
    private let resumed = Atomic<Int>(0)
    private struct State {
        var failures: [FailureReason: Int] = [:]
        var lastLogged: [FailureReason: Double] = [:]
        var unlogged: [FailureReason: Int] = [:]
        var reloadsApplied = 0
        var reloadsRefused = 0
        var certificate: CertificateFacts?
    }
    private let state = Mutex(State())

    public init() {}

    func handshakeCompleted(resumed wasResumed: Bool) {
        if wasResumed {
            resumed.add(1, ordering: .relaxed)
        } else {
            full.add(1, ordering: .relaxed)
        }
    }

    /// Counts a failed handshake and logs it, unless a line for the same reason was written in
    /// the last second (then the next line says how many were left out).
    func handshakeFailed(_ reason: FailureReason, peer: String, detail: String, log: Log, now: Double = Date().timeIntervalSince1970) {
        let suppressed: Int? = state.withLock { state in
            state.failures[reason, default: 0] += 1
            if let last = state.lastLogged[reason], now - last < 1 {
                state.unlogged[reason, default: 0] += 1
                return nil
            }
            state.lastLogged[reason] = now
            defer { state.unlogged[reason] = 0 }
            return state.unlogged[reason] ?? 0
        }
        guard let suppressed else { return }
        let metadata: KeyValuePairs<String, CustomStringConvertible> = ["reason": reason.rawValue, "peer": peer, "detail": detail, "not_logged_since": suppressed]
        switch reason {
        // A client that connects and leaves (a port check, a load balancer's probe) is routine.
        case .closed: log.debug("tls handshake failed", metadata)
        case .timeout: log.info("tls handshake failed", metadata)
        default: log.warning("tls handshake failed", metadata)
        }
    }

    func certificateInForce(_ facts: CertificateFacts) {
        state.withLock { $0.certificate = facts }
    }

    func reloaded(applied: Bool) {
        state.withLock { applied ? ($0.reloadsApplied += 1) : ($0.reloadsRefused += 1) }
    }

    /// How many handshakes failed for `reason` so far.
    func failures(_ reason: FailureReason) -> Int {
        state.withLock { $0.failures[reason] ?? 0 }
    }

    /// The counters in Prometheus' text format (appended to `/metrics`); empty when TLS is off.
    func render() -> String {
        let snapshot = state.withLock { $0 }
        guard let certificate = snapshot.certificate else { return "" }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        family("registryd_tls_handshakes_total", "counter", "TLS handshakes completed on the TCP listener, full or resumed (session ticket or ID).")
        out += "registryd_tls_handshakes_total{resumed=\"false\"} \(full.load(ordering: .relaxed))\n"
        out += "registryd_tls_handshakes_total{resumed=\"true\"} \(resumed.load(ordering: .relaxed))\n"
        family("registryd_tls_handshake_failures_total", "counter", "TLS handshakes that failed, by reason.")
        for reason in FailureReason.allCases {
            out += "registryd_tls_handshake_failures_total{reason=\"\(reason.rawValue)\"} \(snapshot.failures[reason] ?? 0)\n"
        }
        family("registryd_tls_certificate_reloads_total", "counter", "Certificate reloads (SIGHUP or a changed file): applied, or refused with the old certificate kept.")
        out += "registryd_tls_certificate_reloads_total{result=\"applied\"} \(snapshot.reloadsApplied)\n"
        out += "registryd_tls_certificate_reloads_total{result=\"refused\"} \(snapshot.reloadsRefused)\n"
        family("registryd_tls_certificate_expiry_timestamp_seconds", "gauge", "When the server certificate in force expires (Unix time).")
        out += "registryd_tls_certificate_expiry_timestamp_seconds \(certificate.notAfter)\n"
        family("registryd_tls_certificate_info", "gauge", "The server certificate in force: subject and SHA-256 fingerprint.")
        let subject = certificate.subject.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        out += "registryd_tls_certificate_info{subject=\"\(subject)\",sha256=\"\(certificate.sha256)\"} 1\n"
        return out
    }
}
