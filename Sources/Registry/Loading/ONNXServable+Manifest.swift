import Runtime

extension ONNXServable {
    /// What serves a loaded ONNX version: its session with the manifest's class names, wrapped in
    /// a ``HeadsServable`` when the manifest declares heads, and that in a
    /// ``PreprocessServable`` when it declares preprocessing contracts (which concern inputs
    /// alone, so they go outside: the signature's outputs are the heads' either way). The one
    /// place the lifecycle makes a version's servable, so that what a manifest adds to a model
    /// is decided here, not there.
    ///
    /// Heads or contracts that do not fit the model throw, naming the manifest key: the version
    /// fails its load. That holds for a version that shares an identical, already loaded session
    /// (a twin), which is made servable here on the loader thread like any other.
    static func serving(session: Session, provenance: Provenance, manifest: Manifest?) throws(RegistryError) -> any Servable {
        var servable: any Servable = ONNXServable(session: session, provenance: provenance, labels: manifest?.labels ?? [:])
        if let heads = manifest?.heads, !heads.isEmpty {
            servable = try HeadsServable(base: servable, heads: heads)
        }
        if let preprocess = manifest?.preprocess, !preprocess.isEmpty {
            servable = try PreprocessServable(base: servable, preprocess: preprocess)
        }
        return servable
    }

    /// The ONNX Runtime session under a servable made by ``serving(session:provenance:manifest:)``,
    /// which a twin (identical bytes) may share.
    static func session(of servable: any Servable) -> Session? {
        var current = servable
        while true {
            switch current {
            case let plain as ONNXServable: return plain.session
            case let wrapper as PreprocessServable: current = wrapper.base
            case let wrapper as HeadsServable: current = wrapper.base
            default: return nil
            }
        }
    }
}
