import InferenceCodec

/// A version that can answer: its servable, and what the registry knows of it.
///
/// Reference-counted: a request holds its `LoadedVersion` for its whole run, so a version
/// retired mid-request is released (and its servable, an ONNX Runtime session for a model,
/// freed) only after its last request finishes. Immutable, hence `Sendable`.
public final class LoadedVersion: Sendable {
    public let model: String
    public let version: Int
    public let sha256: String
    public let servable: any Servable
    public let manifest: Manifest?
    public let loadedAt: Double
    /// Memory estimated from the file size before the load, and resident memory measured around it.
    public let estimatedBytes: Int64
    public let measuredBytes: Int64?
    /// What the memory budget counts: the larger of the two.
    public var accountedBytes: Int64 { max(estimatedBytes, measuredBytes ?? 0) }
    /// The parts of every v2 response of this version that never change, made once.
    let preamble: InferenceResponse.Preamble
    /// The servable's output names, in its declared order.
    let outputNames: [String]

    public init(model: String, version: Int, sha256: String, servable: any Servable, manifest: Manifest?, loadedAt: Double,
                estimatedBytes: Int64, measuredBytes: Int64? = nil) {
        self.model = model
        self.version = version
        self.sha256 = sha256
        self.servable = servable
        self.manifest = manifest
        self.loadedAt = loadedAt
        self.estimatedBytes = estimatedBytes
        self.measuredBytes = measuredBytes
        self.preamble = InferenceResponse.Preamble(model: model, version: version, sha256: sha256)
        self.outputNames = servable.signature.outputs.map(\.name)
    }

    /// Which artifact this is.
    public var provenance: Provenance { Provenance(model: model, version: version, sha256: sha256) }
}
