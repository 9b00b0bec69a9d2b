import Foundation

/// What is on disk under a version, hashed: its artifact and, when there is one, its manifest.
/// Startup, rescans, `verify` and reloads read it the same way and hand it to
/// ``ArtifactIntegrity``.
struct VersionDigest: Sendable {
    var artifact: (hex: String, size: Int64)
    /// The manifest's SHA-256 and size, nil when the version has none.
    var manifest: (hex: String, size: Int64)?
    /// The manifest's stamp, read before its bytes: bytes written after it are seen as a change
    /// by the next scan.
    var manifestStamp: FileStamp?
    var artifactPath: String
    var manifestPath: String

    /// Hashes the artifact at `path` and the manifest beside it.
    static func read(artifactPath path: String) throws(RegistryError) -> VersionDigest {
        let manifestPath = "\((path as NSString).deletingLastPathComponent)/\(ModelDirectory.manifestName)"
        let stamp = ModelDirectory.stamp(of: manifestPath)
        var manifest: (hex: String, size: Int64)?
        if stamp != nil {
            guard let data = FileManager.default.contents(atPath: manifestPath) else {
                throw RegistryError(.system, "manifest '\(manifestPath)' cannot be read")
            }
            manifest = (SHA256.hex(of: data), Int64(data.count))
        }
        return VersionDigest(artifact: try SHA256.file(at: path), manifest: manifest, manifestStamp: stamp, artifactPath: path, manifestPath: manifestPath)
    }

    /// The manifest's finding against what `record` admitted.
    func manifestFinding(_ record: VersionRecord) -> ArtifactIntegrity.ManifestFinding {
        ArtifactIntegrity.ManifestFinding(recorded: record.manifestSHA256, found: manifest?.hex)
    }

    /// The bytes to record in the quarantine table for a finding that is not intact: the
    /// artifact's when they differ, else the manifest's (a changed or vanished manifest).
    func changedBytes(_ record: VersionRecord) -> (hex: String, size: Int64, path: String) {
        if artifact.hex != record.sha256 { return (artifact.hex, artifact.size, artifactPath) }
        return (manifest?.hex ?? "none", manifest?.size ?? 0, manifestPath)
    }
}
