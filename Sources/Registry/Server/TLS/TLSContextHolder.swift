import Foundation
import Synchronization

/// The TLS context in force on the TCP listener, and its reloads: on SIGHUP (through the
/// daemon's reload) and when the certificate, key or client CA file changes, for Kubernetes
/// rotates a mounted secret without a signal. A new context is built and checked in full off
/// to the side, then swapped in one step: connections accepted afterwards use it, connections
/// already open keep the one they started with (each `SSL` holds its context). A new set of
/// files that does not load is refused with the reason, and the context in force stays.
///
/// Thread-safety: thread-safe. The context in force sits behind one `Mutex`, taken once per
/// accepted connection to copy the reference; reloads are serialised by a second one, held while
/// a new context is built (milliseconds), which the accept path never takes.
final class TLSContextHolder: Sendable {
    let metrics: TLSMetrics
    private let log: Log
    private let current: Mutex<TLSContext>

    private struct Watch {
        var files: TLSFiles
        /// The files as last loaded, or as last refused (so a refusal is not retried and logged
        /// again every second until a file changes once more).
        var seen: [FileIdentity?]
    }
    private let watch: Mutex<Watch>

    /// Loads `files`; throws, naming the file and the problem, when they do not make a context.
    init(files: TLSFiles, metrics: TLSMetrics, log: Log) throws(RegistryError) {
        let seen = files.identity()
        let context = try TLSContext.load(files)
        self.metrics = metrics
        self.log = log
        current = Mutex(context)
        watch = Mutex(Watch(files: files, seen: seen))
        metrics.certificateInForce(context.certificate)
        log.log(.notice, "tls certificate in force", pairs: TLSContextHolder.describe(context, files))
    }

    /// The context for a connection accepted now.
    var context: TLSContext { current.withLock { $0 } }

    /// Builds a context from `files` (the paths may have changed) and puts it in force; throws,
    /// naming the file and the problem, and keeps the context in force when they do not load.
    func reload(_ files: TLSFiles, trigger: String) throws(RegistryError) {
        try watch.withLock { (watch: inout Watch) throws(RegistryError) in
            let seen = files.identity()
            do throws(RegistryError) {
                try apply(files, trigger: trigger)
                watch = Watch(files: files, seen: seen)
            } catch {
                watch.seen = seen
                throw error
            }
        }
    }

    /// Reloads when a file changed since it was last loaded or refused (the server's reaper calls
    /// it every second). A refusal is logged once per change of the files.
    func reloadIfFilesChanged() {
        watch.withLock { watch in
            let seen = watch.files.identity()
            guard seen != watch.seen else { return }
            watch.seen = seen
            try? apply(watch.files, trigger: "file changed")
        }
    }

    /// Called with the watch's lock held, so that two reloads never interleave.
    private func apply(_ files: TLSFiles, trigger: String) throws(RegistryError) {
        let context: TLSContext
        do {
            context = try TLSContext.load(files)
        } catch {
            metrics.reloaded(applied: false)
            log.error("tls certificate reload refused; the certificate in force stays", ["trigger": trigger, "error": error.message])
            throw RegistryError(error.code, "tls certificate reload refused, the certificate in force stays: \(error.message)")
        }
        current.withLock { $0 = context }
        metrics.reloaded(applied: true)
        metrics.certificateInForce(context.certificate)
        log.log(.notice, "tls certificate reloaded", pairs: TLSContextHolder.describe(context, files) + [("trigger", trigger)])
    }

    private static func describe(_ context: TLSContext, _ files: TLSFiles) -> [(String, String)] {
        [("certificate", files.certificate), ("subject", context.certificate.subject),
         ("not_after", CertificateFacts.text(context.certificate.notAfter)), ("sha256", String(context.certificate.sha256.prefix(16))),
         ("client_ca", files.clientCA ?? "none")]
    }
}
