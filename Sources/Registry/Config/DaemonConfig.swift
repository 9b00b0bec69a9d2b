import Foundation

/// The daemon's configuration: `registryd.json` in the config directory (`registry.d`), plus one
/// policy file per model under `models/`. See registry.d/README.md for every key.
public struct DaemonConfig: Sendable, Equatable {
    /// Where model versions live: `<modelRoot>/<model>/<version>/model.onnx`.
    public var modelRoot: String
    /// The SQLite catalog.
    public var database: String
    /// The control socket, and its file mode.
    public var controlSocket: String
    public var controlSocketMode: UInt32
    /// The group that owns the control socket, if set.
    public var controlSocketGroup: String?
    /// `host:port` of the TCP listener for inference; `nil` keeps it off.
    public var listen: String?
    /// PEM files that make the TCP listener speak HTTPS (TLS 1.2 and 1.3): the certificate chain
    /// and its private key, both or neither; with a client CA too, clients must present a
    /// certificate it signed (mutual TLS). See ``TLSFiles``.
    public var tlsCertificate: String?
    public var tlsPrivateKey: String?
    public var tlsClientCA: String?
    /// Whether the TCP listener also serves the status page (`/`) and the control API's read-only
    /// `GET` endpoints that it reads. Mutations stay on the control socket only.
    public var tcpStatusPage: Bool = false
    /// ONNX Runtime intra-op threads shared by all sessions; 0 lets it choose.
    public var onnxThreads: Int
    /// Models smaller than this run on the calling thread alone, outside the shared ONNX Runtime
    /// thread pool (see ``Loader/singleThreadBelowBytes``); 0 sends every model to the pool.
    public var singleThreadBelowBytes: Int64 = 16 << 20
    /// Upper bound of the memory that loaded models may take, in bytes; 0 for no bound.
    public var memoryBudgetBytes: Int64
    /// What to do when loading a new version would exceed the budget while the old one is loaded.
    public var loadOrder: LoadOrder
    public var logLevel: Log.Level
    public var logFormat: Log.Format
    /// How long a file's size and modification time must stay unchanged before it is admitted
    /// (files that arrive by atomic rename are admitted at once).
    public var settleSeconds: Double
    /// How often the whole model root is rescanned even without inotify events.
    public var rescanIntervalSeconds: Double
    /// Largest HTTP request body accepted.
    public var maxBodyBytes: Int
    /// HTTP worker threads (they also run predictions); 0 picks twice the CPU count, at least 4.
    public var httpThreads: Int = 0
    /// How long an HTTP worker polls an answered connection for the client's next request
    /// before it sleeps, in microseconds (``HTTPServer/Configuration/busyPollMicroseconds``);
    /// 0 turns it off.
    public var busyPollMicroseconds: Int = 50
    /// Open connections beyond this are answered 503.
    public var maxConnections: Int = 4096
    /// A request must arrive whole within this many seconds of its first byte.
    public var requestTimeoutSeconds: Double = 30
    /// An idle keep-alive connection is closed after this many seconds.
    public var idleTimeoutSeconds: Double = 300
    /// Mirrored requests waiting for the shadow; beyond this they are dropped (and counted).
    public var shadowQueueSize: Int = 256
    /// The share of one CPU (percent) that shadow runs may take; past it, mirrors are dropped.
    public var shadowCPUPercent: Int = 10
    /// The spare CPU (percent of one CPU: the machine's idle time plus the shadow's own runs)
    /// below which the shadow pauses, dropping mirrors; 0 turns the check off.
    public var shadowMinSpareCPUPercent: Int = 25
    /// How often the in-memory serving statistics are written to the catalog, and how long
    /// they are kept there.
    public var statsFlushSeconds: Double = 10
    public var statsRetentionHours: Double = 168
    /// Ed25519 public keys (raw 32 bytes, base64) that may sign artifacts, by key name.
    public var trustedKeys: [String: String]
    /// Per-model policies, by model name; models without a file get ``ModelPolicy/default``.
    public var policies: [String: ModelPolicy]

    /// Availability first (the default) loads the new version before unloading the old one;
    /// budget first unloads the old one first when both would not fit.
    public enum LoadOrder: String, Sendable { case availabilityFirst = "availability_first", budgetFirst = "budget_first" }

    public init(
        modelRoot: String, database: String, controlSocket: String = "/run/registryd/registryd.sock",
        controlSocketMode: UInt32 = 0o660, controlSocketGroup: String? = nil, listen: String? = nil,
        onnxThreads: Int = 0, memoryBudgetBytes: Int64 = 0, loadOrder: LoadOrder = .availabilityFirst,
        logLevel: Log.Level = .info, logFormat: Log.Format = .text, settleSeconds: Double = 2,
        rescanIntervalSeconds: Double = 30, maxBodyBytes: Int = 64 << 20, trustedKeys: [String: String] = [:],
        policies: [String: ModelPolicy] = [:]
    ) {
        self.modelRoot = modelRoot
        self.database = database
        self.controlSocket = controlSocket
        self.controlSocketMode = controlSocketMode
        self.controlSocketGroup = controlSocketGroup
        self.listen = listen
        self.onnxThreads = onnxThreads
        self.memoryBudgetBytes = memoryBudgetBytes
        self.loadOrder = loadOrder
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.settleSeconds = settleSeconds
        self.rescanIntervalSeconds = rescanIntervalSeconds
        self.maxBodyBytes = maxBodyBytes
        self.trustedKeys = trustedKeys
        self.policies = policies
    }

    public func policy(for model: String) -> ModelPolicy { policies[model] ?? .default }

    /// The TLS files, when the TCP listener speaks HTTPS.
    public var tlsFiles: TLSFiles? {
        guard let tlsCertificate, let tlsPrivateKey else { return nil }
        return TLSFiles(certificate: tlsCertificate, privateKey: tlsPrivateKey, clientCA: tlsClientCA)
    }

    /// Reads `<directory>/registryd.json` and `<directory>/models/*.json`. Relative paths in the
    /// files are taken relative to `directory`.
    public static func load(directory: String) throws(RegistryError) -> DaemonConfig {
        let base = URL(fileURLWithPath: directory, isDirectory: true).standardizedFileURL
        let mainFile = base.appendingPathComponent("registryd.json").path
        guard let data = FileManager.default.contents(atPath: mainFile) else {
            throw RegistryError(.invalidConfiguration, "\(mainFile): cannot read the daemon configuration (missing or unreadable)")
        }
        var config = try parse(mainFile: mainFile, data: data, base: base)

        let policyDir = base.appendingPathComponent("models").path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: policyDir)) ?? []
        for file in names.sorted() where file.hasSuffix(".json") {
            let model = String(file.dropLast(5))
            let path = "\(policyDir)/\(file)"
            guard ModelName.isValid(model) else {
                throw RegistryError(.invalidConfiguration, "\(path): '\(model)' is not a valid model name (\(ModelName.rule))")
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw RegistryError(.invalidConfiguration, "\(path): cannot read the policy file")
            }
            config.policies[model] = try ModelPolicy.parse(file: path, data: data, trustedKeys: config.trustedKeys)
        }
        return config
    }

    /// Parses `registryd.json` (its bytes): every key checked, relative paths resolved against
    /// `base`. Touches no file: the policy files are read by ``load(directory:)``.
    public static func parse(mainFile: String, data: Data, base: URL) throws(RegistryError) -> DaemonConfig {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : base.appendingPathComponent(path).standardizedFileURL.path
        }
        var r = try ConfigReader(file: mainFile, data: data)
        guard let root = try r.string("model_root") else {
            throw RegistryError(.invalidConfiguration, "\(mainFile): key 'model_root' is required (the directory of models)")
        }
        var config = DaemonConfig(modelRoot: resolve(root), database: resolve(try r.string("database") ?? "/var/lib/registryd/registry.sqlite"))
        if let socket = try r.string("control_socket") { config.controlSocket = resolve(socket) }
        if let mode = try r.string("control_socket_mode") {
            guard let value = UInt32(mode, radix: 8), value <= 0o777 else {
                throw RegistryError(.invalidConfiguration, "\(mainFile): key 'control_socket_mode': expected an octal file mode such as \"0660\", got \"\(mode)\"")
            }
            config.controlSocketMode = value
        }
        config.controlSocketGroup = try r.string("control_socket_group")
        if let listen = try r.string("listen") {
            try ListenAddress.validate(listen, file: mainFile)
            config.listen = listen
        }
        config.tcpStatusPage = try r.bool("tcp_status_page") ?? false
        config.tlsCertificate = try r.string("tls_certificate").map(resolve)
        config.tlsPrivateKey = try r.string("tls_private_key").map(resolve)
        config.tlsClientCA = try r.string("tls_client_ca").map(resolve)
        if (config.tlsCertificate == nil) != (config.tlsPrivateKey == nil) {
            throw RegistryError(.invalidConfiguration, "\(mainFile): keys 'tls_certificate' and 'tls_private_key' go together: set both for HTTPS, or neither")
        }
        if config.tlsClientCA != nil && config.tlsCertificate == nil {
            throw RegistryError(.invalidConfiguration, "\(mainFile): key 'tls_client_ca' needs 'tls_certificate' and 'tls_private_key' (mutual TLS is TLS first)")
        }
        config.onnxThreads = try r.int("onnx_threads", in: 0...256) ?? 0
        config.singleThreadBelowBytes = Int64(try r.int("single_thread_below_mb", in: 0...(1 << 20)) ?? 16) << 20
        config.memoryBudgetBytes = Int64(try r.int("memory_budget_mb", in: 0...(1 << 30)) ?? 0) << 20
        if let order = try r.string("load_order", oneOf: ["availability_first", "budget_first"]) {
            config.loadOrder = LoadOrder(rawValue: order)!
        }
        if let level = try r.string("log_level", oneOf: Log.Level.allCases.map { "\($0)" }) {
            config.logLevel = Log.Level(name: level)!
        }
        if let format = try r.string("log_format", oneOf: ["text", "json"]) { config.logFormat = Log.Format(rawValue: format)! }
        config.settleSeconds = try r.double("settle_seconds", in: 0...3600) ?? 2
        config.rescanIntervalSeconds = try r.double("rescan_interval_seconds", in: 0.05...86400) ?? 30
        config.maxBodyBytes = try r.int("max_body_bytes", in: 1024...(4 << 30)) ?? (64 << 20)
        config.httpThreads = try r.int("http_threads", in: 0...1024) ?? 0
        config.busyPollMicroseconds = try r.int("busy_poll_us", in: 0...10_000) ?? 50
        config.maxConnections = try r.int("max_connections", in: 16...1_000_000) ?? 4096
        config.requestTimeoutSeconds = try r.double("request_timeout_seconds", in: 0.1...3600) ?? 30
        config.idleTimeoutSeconds = try r.double("idle_timeout_seconds", in: 1...86400) ?? 300
        config.shadowQueueSize = try r.int("shadow_queue_size", in: 1...65536) ?? 256
        config.shadowCPUPercent = try r.int("shadow_cpu_percent", in: 1...100) ?? 10
        config.shadowMinSpareCPUPercent = try r.int("shadow_min_spare_cpu_percent", in: 0...100_000) ?? 25
        config.statsFlushSeconds = try r.double("stats_flush_seconds", in: 0.1...3600) ?? 10
        config.statsRetentionHours = try r.double("stats_retention_hours", in: 1...87600) ?? 168
        config.trustedKeys = try r.stringMap("trusted_keys") ?? [:]
        for (name, key) in config.trustedKeys {
            guard let raw = Data(base64Encoded: key), raw.count == 32 else {
                throw RegistryError(.invalidConfiguration, "\(mainFile): key 'trusted_keys.\(name)': expected a base64 Ed25519 public key (32 bytes)")
            }
        }
        try r.finish()
        return config
    }
}

/// A `host:port` TCP address.
public enum ListenAddress {
    static func validate(_ value: String, file: String) throws(RegistryError) {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]),
              (0...65535).contains(port), colon != value.startIndex
        else {
            throw RegistryError(.invalidConfiguration, "\(file): key 'listen': expected host:port such as \"127.0.0.1:8080\", got \"\(value)\"")
        }
    }
}
