/// `GET /v1/status`: the daemon itself.
public struct DaemonInfo: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    public var pid: Int32
    public var uptimeSeconds: Double
    public var modelRoot: String
    public var database: String
    public var controlSocket: String
    public var listen: String?
    public var models: Int
    public var loadedVersions: Int

    enum CodingKeys: String, CodingKey {
        case name, version, pid, database, listen, models
        case uptimeSeconds = "uptime_seconds", modelRoot = "model_root", controlSocket = "control_socket", loadedVersions = "loaded_versions"
    }

    public init(name: String, version: String, pid: Int32, uptimeSeconds: Double, modelRoot: String, database: String,
                controlSocket: String, listen: String?, models: Int, loadedVersions: Int) {
        self.name = name
        self.version = version
        self.pid = pid
        self.uptimeSeconds = uptimeSeconds
        self.modelRoot = modelRoot
        self.database = database
        self.controlSocket = controlSocket
        self.listen = listen
        self.models = models
        self.loadedVersions = loadedVersions
    }
}
