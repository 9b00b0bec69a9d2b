import Foundation

/// Where the daemon's configuration comes from: the `registry.d` directory, with the command
/// line's overrides applied on top. A reload (SIGHUP, `registryctl reload`) reads the same
/// source again, so an override given at start keeps winning over the file.
public struct ConfigSource: Sendable, Equatable {
    public var directory: String
    /// Command-line overrides, by option name (`--model-root`, `--database`, `--socket`,
    /// `--listen`, `--log-level`, `--log-format`).
    public var overrides: [String: String]
    /// Relative override paths are taken against this directory (the daemon's working directory
    /// at start), not against `registry.d`.
    public var workingDirectory: String

    public static let overrideOptions = ["--model-root", "--database", "--socket", "--listen", "--log-level", "--log-format"]

    public init(directory: String, overrides: [String: String] = [:],
                workingDirectory: String = FileManager.default.currentDirectoryPath) {
        self.directory = directory
        self.overrides = overrides
        self.workingDirectory = workingDirectory
    }

    /// What is wrong with the command line's override values, if anything (checked before any
    /// file is read: registryd exits 64 on it).
    public static func overrideProblem(_ overrides: [String: String]) -> String? {
        if let v = overrides["--log-level"], Log.Level(name: v) == nil {
            return "--log-level: expected debug, info, notice, warning or error, got '\(v)'"
        }
        if let v = overrides["--log-format"], Log.Format(rawValue: v) == nil {
            return "--log-format: expected text or json, got '\(v)'"
        }
        if let v = overrides["--listen"], (try? ListenAddress.validate(v, file: "--listen")) == nil {
            return "--listen: expected host:port such as \"127.0.0.1:8080\", got \"\(v)\""
        }
        return nil
    }

    /// Reads and checks the whole configuration; throws naming the file, the key and the problem.
    public func load() throws(RegistryError) -> DaemonConfig {
        var config = try DaemonConfig.load(directory: directory)
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path
                : URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: workingDirectory + "/")).standardizedFileURL.path
        }
        if let v = overrides["--model-root"] { config.modelRoot = absolute(v) }
        if let v = overrides["--database"] { config.database = absolute(v) }
        if let v = overrides["--socket"] { config.controlSocket = absolute(v) }
        if let v = overrides["--listen"] { config.listen = v }
        if let problem = ConfigSource.overrideProblem(overrides) {
            throw RegistryError(.invalidConfiguration, problem)
        }
        if let v = overrides["--log-level"], let level = Log.Level(name: v) { config.logLevel = level }
        if let v = overrides["--log-format"], let format = Log.Format(rawValue: v) { config.logFormat = format }
        return config
    }
}

/// What a configuration reload changes. Pure: given the configuration in force and the one just
/// read, it decides which changes take effect now and which wait for a restart (the listeners,
/// the catalog, the thread pools are built once at start).
public struct ConfigReload: Sendable, Equatable {
    /// The configuration to put in force: the new one, with the keys that need a restart kept at
    /// their current values (so what the daemon reports stays true).
    public var applied: DaemonConfig
    /// The keys whose new values are in force now.
    public var changed: [String]
    /// The keys that changed in the files but keep their current values until a restart.
    public var restartRequired: [String]

    public init(current: DaemonConfig, proposed: DaemonConfig) {
        var applied = proposed
        var changed: [String] = []
        var restart: [String] = []
        /// A key that takes effect at once.
        func live<T: Equatable>(_ key: String, _ path: KeyPath<DaemonConfig, T>) {
            if current[keyPath: path] != proposed[keyPath: path] { changed.append(key) }
        }
        /// A key fixed at start: a change is reported and left for the next restart.
        func fixed<T: Equatable>(_ key: String, _ path: WritableKeyPath<DaemonConfig, T>) {
            if current[keyPath: path] != proposed[keyPath: path] {
                restart.append(key)
                applied[keyPath: path] = current[keyPath: path]
            }
        }
        fixed("model_root", \.modelRoot)
        fixed("database", \.database)
        fixed("control_socket", \.controlSocket)
        fixed("control_socket_mode", \.controlSocketMode)
        fixed("control_socket_group", \.controlSocketGroup)
        fixed("listen", \.listen)
        fixed("tcp_status_page", \.tcpStatusPage)
        fixed("onnx_threads", \.onnxThreads)
        fixed("single_thread_below_mb", \.singleThreadBelowBytes)
        fixed("http_threads", \.httpThreads)
        fixed("busy_poll_us", \.busyPollMicroseconds)
        fixed("max_connections", \.maxConnections)
        fixed("max_body_bytes", \.maxBodyBytes)
        fixed("request_timeout_seconds", \.requestTimeoutSeconds)
        fixed("idle_timeout_seconds", \.idleTimeoutSeconds)
        fixed("shadow_queue_size", \.shadowQueueSize)
        fixed("shadow_cpu_percent", \.shadowCPUPercent)
        fixed("shadow_min_spare_cpu_percent", \.shadowMinSpareCPUPercent)
        fixed("stats_flush_seconds", \.statsFlushSeconds)
        fixed("rescan_interval_seconds", \.rescanIntervalSeconds)
        live("log_level", \.logLevel)
        live("log_format", \.logFormat)
        live("settle_seconds", \.settleSeconds)
        live("memory_budget_mb", \.memoryBudgetBytes)
        live("load_order", \.loadOrder)
        live("stats_retention_hours", \.statsRetentionHours)
        live("trusted_keys", \.trustedKeys)
        // New certificate files (or the same ones re-read) apply to new connections at once; but
        // turning HTTPS on or off changes what the listener speaks, which waits for a restart.
        let tlsToggled = (current.tlsFiles == nil) != (proposed.tlsFiles == nil)
        for (key, path) in [("tls_certificate", \DaemonConfig.tlsCertificate), ("tls_private_key", \DaemonConfig.tlsPrivateKey),
                            ("tls_client_ca", \DaemonConfig.tlsClientCA)] {
            if tlsToggled { fixed(key, path) } else { live(key, path) }
        }
        for model in Set(current.policies.keys).union(proposed.policies.keys).sorted()
        where current.policies[model] != proposed.policies[model] {
            changed.append("models/\(model).json")
        }
        self.applied = applied
        self.changed = changed
        self.restartRequired = restart
    }
}
