import Foundation
import Glibc
import Runtime

/// The daemon as a library: the catalog, the ONNX Runtime environment, the lifecycle and the
/// router, started in that order and stopped in reverse.
public final class Daemon: Sendable {
    public let config: DaemonConfig
    public let log: Log
    public let catalog: Catalog
    public let router: Router
    public let lifecycle: Lifecycle
    private let lockFD: Int32

    /// Opens the catalog (taking its lock: one daemon per catalog) and prepares the lifecycle.
    public init(config: DaemonConfig, log: Log, clock: any RegistryClock = SystemClock(),
                watcher: (any DirectoryWatcher)? = InotifyWatcher()) throws(RegistryError) {
        self.config = config
        self.log = log
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
        self.lifecycle = Lifecycle(config: config, catalog: catalog, router: router, loader: Loader(environment: environment),
                                   log: log, clock: clock, watcher: watcher)
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

    /// Restores and loads models, then starts watching; returns once they are loaded.
    public func start() throws(RegistryError) {
        guard ModelDirectory.isDirectory(config.modelRoot) else {
            throw RegistryError(.invalidConfiguration, "model root '\(config.modelRoot)' is not a directory")
        }
        try lifecycle.start()
    }

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

    /// Stops in reverse start order: the lifecycle, then the catalog, then the lock.
    public func stop() {
        lifecycle.stop()
        catalog.close()
        close(lockFD)
    }

    /// Runs a prediction on the version the router picks (or on `version`).
    public func predict(model: String, version: Int? = nil, inputs: [String: Tensor], outputs: [String]? = nil)
        throws(RegistryError) -> (outputs: [String: Tensor], version: LoadedVersion, decision: RoutingDecision)
    {
        let (loaded, decision) = try router.resolve(model: model, version: version)
        do {
            return (try loaded.session.run(inputs, outputs: outputs), loaded, decision)
        } catch {
            let code: RegistryError.Code = switch error.code {
            case .unknownName, .missingInput, .typeMismatch, .shapeMismatch, .invalidTensor: .invalidArgument
            default: .modelFailure
            }
            throw RegistryError(code, "model '\(model)' version \(loaded.version): \(error.message)")
        }
    }
}
