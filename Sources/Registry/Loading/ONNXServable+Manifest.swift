import Runtime

extension ONNXServable {
    /// What serves a loaded ONNX version: its session with the manifest's class names, wrapped in
    /// a ``HeadsServable`` when the manifest declares heads. The one place the lifecycle makes a
    /// version's servable, so that what a manifest adds to a model is decided here, not there.
    ///
    /// Heads were checked against the model by ``Loader/load(path:manifest:)``, which fails the
    /// version when they do not fit. A version that shares an identical, already loaded session
    /// (a twin) is not loaded again, so its heads are checked only here: when they do not fit,
    /// the version is served by an ``UnservableVersion`` that refuses every prediction with the
    /// reason, rather than serving the model without the heads its manifest promises.
    static func serving(session: Session, provenance: Provenance, manifest: Manifest?) -> any Servable {
        let plain = ONNXServable(session: session, provenance: provenance, labels: manifest?.labels ?? [:])
        guard let heads = manifest?.heads, !heads.isEmpty else { return plain }
        do throws(RegistryError) {
            return try HeadsServable(base: plain, heads: heads)
        } catch {
            return UnservableVersion(signature: plain.signature, reason: "\(provenance) cannot serve: \(error.message)")
        }
    }
}
