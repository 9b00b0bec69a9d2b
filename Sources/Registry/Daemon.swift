import Foundation
import Glibc
import Runtime
import Synchronization
import Wire

/// The daemon as a library: the catalog, the ONNX Runtime environment, the lifecycle and the
/// router, started in that order and stopped in reverse.
public final class Daemon: Sendable {
    public let config: DaemonConfig
    public let log: Log
    public let catalog: Catalog
    public let router: Router
    /// The one path of every prediction (the v2 endpoint and ``predict(model:version:inputs:outputs:)``).
    public let predictions: PredictionService
    public let lifecycle: Lifecycle
    /// Serving statistics (owned by the lifecycle, which judges rollouts with them).
    public var stats: ServingStats { lifecycle.stats }
    /// The HTTP server on the control socket (and the TCP listener, when configured).
    public let server: HTTPServer
    /// Where the configuration was read from, for reloads; `nil` when built from code.
    public let source: ConfigSource?
    private let lockFD: Int32
    /// Serialises reloads (a SIGHUP and a `registryctl reload` may arrive together).
    private let reloading = NSLock()
    private let started = Flag()
    private let stopped = Flag()

    /// This build's version, reported by `--version`, `/v1/status` and `/v2`.
    public static let version = "0.4.0"

    /// Opens the catalog (taking its lock: one daemon per catalog) and prepares the lifecycle.
    public init(config: DaemonConfig, log: Log, source: ConfigSource? = nil, clock: any RegistryClock = SystemClock(),
                watcher: (any DirectoryWatcher)? = InotifyWatcher()) throws(RegistryError) {
        self.config = config
        self.log = log
        self.source = source
        let directory = (config.database as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let lockFD = try Daemon.lock(config.database + ".lock")
        let catalog: Catalog
        let environment: Environment
        do {
            catalog = try Catalog(path: config.database, clock: clock)
            environment = try Daemon.environment(threads: config.onnxThreads)
        } catch {
            close(lockFD)
            throw error
        }
        self.lockFD = lockFD
        self.catalog = catalog
        self.router = Router()
        let lifecycle = Lifecycle(config: config, catalog: catalog, router: router, loader: Loader(environment: environment, singleThreadBelowBytes: config.singleThreadBelowBytes),
                                  log: log, clock: clock, watcher: watcher)
        self.lifecycle = lifecycle
        let predictions = PredictionService(router: router, stats: lifecycle.stats, mirror: lifecycle.mirror)
        self.predictions = predictions
        let threads = config.httpThreads > 0 ? config.httpThreads : max(4, 2 * ProcessInfo.processInfo.activeProcessorCount)
        let serverConfiguration = HTTPServer.Configuration(
            threads: threads, maxConnections: config.maxConnections, requestTimeout: config.requestTimeoutSeconds,
            idleTimeout: config.idleTimeoutSeconds, limits: HTTPRequestParser.Limits(maxBodyBytes: config.maxBodyBytes),
            busyPollMicroseconds: config.busyPollMicroseconds)
        let started = self.started
        // The control API reaches `reload` through this box, filled once `self` exists.
        let reloader = Reloader()
        let metrics = MetricsExporter(stats: lifecycle.stats, lifecycle: lifecycle)
        let tlsMetrics = TLSMetrics()
        let endpoints = Endpoints(
            control: ControlAPI(lifecycle: lifecycle, catalog: catalog, config: config, startedAt: clock.now(),
                                reload: { actor throws(RegistryError) in try reloader.run(actor) }),
            inference: InferenceAPI(router: router, service: predictions, isReady: { started.value }),
            metrics: metrics, tcpStatusPage: config.tcpStatusPage, tlsMetrics: tlsMetrics)
        do {
            server = try HTTPServer(configuration: serverConfiguration, log: log, tlsMetrics: tlsMetrics) { request, peer in
                endpoints.handle(request, peer: peer)
            }
        } catch {
            catalog.close()
            close(lockFD)
            throw error
        }
        let server = self.server
        metrics.connections.withLock { $0 = { [weak server] in server?.counts ?? HTTPServer.Counts() } }
        reloader.target.withLock { $0 = { [weak self] actor throws(RegistryError) in
            guard let self else { throw RegistryError(.unavailable, "registryd is stopping") }
            return try self.reload(actor: actor)
        } }
    }

    /// Re-reads the configuration from ``source`` and puts it in force (SIGHUP, `POST /v1/reload`).
    /// A configuration that does not parse or check is refused with the reason, and the one in
    /// force stays. Keys fixed at start (listeners, catalog, thread pools) keep their values and
    /// are named as needing a restart. The reload is recorded in the audit trail either way.
    @discardableResult
    public func reload(actor: String = EventDraft.daemon) throws(RegistryError) -> ConfigReload {
        reloading.lock()
        defer { reloading.unlock() }
        guard let source else {
            throw RegistryError(.unavailable, "this daemon was not started from a configuration directory; nothing to reload")
        }
        let proposed: DaemonConfig
        do {
            proposed = try source.load()
        } catch {
            log.error("configuration reload refused; the configuration in force stays", ["config": source.directory, "error": error.message])
            _ = try? catalog.append(EventDraft(actor: actor, action: "reload", after: "refused", reason: error.message))
            throw RegistryError(error.code, "configuration reload refused, the configuration in force stays: \(error.message)")
        }
        let plan = ConfigReload(current: lifecycle.config, proposed: proposed)
        do {
            // The certificate files are re-read on every reload (rotation by SIGHUP), and refuse
            // the whole reload when they do not load, like an error in the files.
            try server.reloadTLS(plan.applied.tlsFiles)
        } catch {
            _ = try? catalog.append(EventDraft(actor: actor, action: "reload", after: "refused", reason: error.message))
            throw RegistryError(error.code, "configuration reload refused, the configuration in force stays: \(error.message)")
        }
        lifecycle.apply(plan.applied)
        log.configure(level: plan.applied.logLevel, format: plan.applied.logFormat)
        let summary = (plan.changed.isEmpty ? "no change in force" : "in force: " + plan.changed.joined(separator: ","))
            + (plan.restartRequired.isEmpty ? "" : "; after a restart: " + plan.restartRequired.joined(separator: ","))
        _ = try? catalog.append(EventDraft(actor: actor, action: "reload", after: "applied", reason: summary))
        log.notice("configuration reloaded", ["config": source.directory, "changed": plan.changed.isEmpty ? "none" : plan.changed.joined(separator: ","),
                                              "restart_required": plan.restartRequired.isEmpty ? "none" : plan.restartRequired.joined(separator: ",")])
        if !plan.restartRequired.isEmpty {
            log.warning("configuration keys changed that take effect only after a restart; their current values stay",
                        ["keys": plan.restartRequired.joined(separator: ",")])
        }
        // The next scan applies the new settle window and policies to versions still waiting to
        // be admitted. (Versions already refused stay refused: publish them again.)
        lifecycle.rescanNow()
        return plan
    }

    private static func environment(threads: Int) throws(RegistryError) -> Environment {
        do {
            return try Environment.shared(Environment.Configuration(intraOpThreads: threads))
        } catch {
            throw RegistryError(.system, "onnx runtime: \(error.message)")
        }
    }

    /// Takes an exclusive lock beside the catalog, so that a second daemon on the same catalog
    /// exits with a clear error instead of interleaving writes. The kernel drops the lock when
    /// the process dies, even by kill -9.
    private static func lock(_ path: String) throws(RegistryError) -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RegistryError(.system, "cannot open lock file '\(path)': \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw RegistryError(.system, "another registryd is running on catalog '\(path.dropLast(5))' (lock '\(path)' is held)")
        }
        return fd
    }

    /// A daemon that failed to start, or was never stopped, still releases its socket, catalog
    /// and lock.
    deinit {
        stop(deadline: 0)
    }

    /// Opens the listeners (failing fast if the socket is taken), restores and loads models,
    /// starts watching, and serves; returns once the models are loaded.
    public func start() throws(RegistryError) {
        guard ModelDirectory.isDirectory(config.modelRoot) else {
            throw RegistryError(.invalidConfiguration, "model root '\(config.modelRoot)' is not a directory")
        }
        _ = Socket.raiseOpenFileLimit()
        try server.listenUnix(path: config.controlSocket, mode: config.controlSocketMode, group: config.controlSocketGroup)
        if let listen = config.listen {
            try server.listenTCP(listen, tls: config.tlsFiles)
        } else if config.tlsFiles != nil {
            throw RegistryError(.invalidConfiguration, "tls_certificate is set but 'listen' is not: TLS applies to the TCP listener")
        }
        // Serve health and the control API while models load; /v2/health/ready says 503 until then.
        server.start()
        do {
            try lifecycle.start()
        } catch {
            server.stop(deadline: 0)
            throw error
        }
        started.value = true
    }

    /// The TCP port the serving listener is bound to, if any.
    public var tcpPort: Int? { server.tcpPort }

    /// One line describing what serves, for the ready log line.
    public func summary() -> String {
        let models = lifecycle.status()
        if models.isEmpty { return "no models yet" }
        return models.map { model in
            let versions = model.versions.filter { model.loadedVersions.contains($0.version) }
                .map { "\($0.version)(\($0.state.rawValue))" }
            return "\(model.name)@" + (versions.isEmpty ? "none" : versions.joined(separator: ","))
        }.joined(separator: " ")
    }

    /// Stops in reverse start order: the server (letting requests in flight finish), the
    /// lifecycle (waiting for a model load still running), the catalog, then the lock, all
    /// within one `deadline` in seconds. Loads in flight are abandoned first, so that a command
    /// waiting for one (a rollback loading its target) answers at once and does not hold the
    /// server's drain.
    public func stop(deadline: Double = 10) {
        guard !stopped.value else { return }
        stopped.value = true
        started.value = false
        let end = Date().addingTimeInterval(max(deadline, 0))
        lifecycle.abandonLoadsForStop()
        server.stop(deadline: max(end.timeIntervalSinceNow, 0))
        lifecycle.stop(loadDeadline: max(end.timeIntervalSinceNow, 0))
        catalog.close()
        close(lockFD)
    }

    /// Runs a prediction on the version the router picks (or on `version`), through the same
    /// path as the v2 endpoint; a mirror drawn for the model's shadow is queued at once.
    public func predict(model: String, version: Int? = nil, inputs: [String: Tensor], outputs: [String]? = nil)
        throws(RegistryError) -> (outputs: [String: Tensor], version: LoadedVersion, decision: RoutingDecision)
    {
        let served = try predictions.predict(model: model, version: version, inputs: inputs, outputs: outputs)
        served.offerShadow?()
        return (served.prediction.outputs, served.version, served.decision)
    }
}

/// Lets the control API call ``Daemon/reload(actor:)``, which does not exist yet when the API is
/// built inside the daemon's initialiser.
final class Reloader: Sendable {
    let target = Mutex<(@Sendable (String) throws(RegistryError) -> ConfigReload)?>(nil)

    func run(_ actor: String) throws(RegistryError) -> ConfigReload {
        guard let target = target.withLock({ $0 }) else { throw RegistryError(.unavailable, "registryd is starting; retry") }
        return try target(actor)
    }
}

/// A boolean that threads share: set by one, read by many.
final class Flag: Sendable {
    private let storage = Atomic<Bool>(false)

    var value: Bool {
        get { storage.load(ordering: .acquiring) }
        set { storage.store(newValue, ordering: .releasing) }
    }
}
