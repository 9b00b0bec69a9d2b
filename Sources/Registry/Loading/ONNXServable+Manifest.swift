import Runtime

extension ONNXServable {
    /// What serves a loaded ONNX version: its session with the manifest's class names, wrapped in
    /// a ``HeadsServable`` when the manifest declares heads. The one place the lifecycle makes a
    /// version's servable, so that what a manifest adds to a model is decided here, not there.
    ///
    /// Heads that do not fit the model throw, naming the manifest key: the version fails its
    /// load. That holds for a version that shares an identical, already loaded session (a twin),
    /// which is made servable here on the loader thread like any other.
    static func serving(session: Session, provenance: Provenance, manifest: Manifest?) throws(RegistryError) -> any Servable {
        let plain = ONNXServable(session: session, provenance: provenance, labels: manifest?.labels ?? [:])
        guard let heads = manifest?.heads, !heads.isEmpty else { return plain }
        return try HeadsServable(base: plain, heads: heads)
    }

    /// The ONNX Runtime session under a servable made by ``serving(session:provenance:manifest:)``,
    /// which a twin (identical bytes) may share.
    static func session(of servable: any Servable) -> Session? {
        if let plain = servable as? ONNXServable { return plain.session }
        return ((servable as? HeadsServable)?.base as? ONNXServable)?.session
    }
}
