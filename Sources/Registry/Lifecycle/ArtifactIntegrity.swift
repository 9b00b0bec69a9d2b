/// The one rule for what is on disk under a known version number: a version's bytes (its
/// artifact and its manifest) never change. Startup, rescans, `verify` and reloads all ask it, so that the same finding gets the
/// same outcome wherever it is made. Pure: it decides, the lifecycle carries out.
enum ArtifactIntegrity {
    /// Where the bytes were looked at; it only changes the words of the reason.
    enum Occasion: Equatable {
        /// Startup's re-hash of every version that should serve.
        case startup
        /// A rescan found the file's size or time changed.
        case scan
        /// `registryctl verify`, by this actor.
        case verify(actor: String)
        /// A retired version about to be loaded again (a rollback).
        case reload
    }

    /// What to do with a version whose file was hashed.
    enum Verdict: Equatable {
        /// The admitted bytes: nothing to do.
        case intact
        /// Other bytes under loaded production: the admitted bytes keep serving from memory
        /// (unloading would leave the model answering 503), the new bytes are quarantined, and
        /// every status surface says the file changed: no restart can load it again.
        case serveFromMemory(reason: String)
        /// Other bytes: quarantined, and unloaded when loaded (nothing needs it to answer; a
        /// split falls back to production, a rollout rolls back, a shadow stops).
        case quarantine(unload: Bool, reason: String)
    }

    /// The manifest's part of a version's identity: the SHA-256 of the admitted manifest and of
    /// the one on disk now, nil for none.
    struct ManifestFinding: Equatable {
        var recorded: String?
        var found: String?
    }

    /// Judges the bytes found under a version: the artifact's digest against the recorded one,
    /// and, when `manifest` is given, the manifest's, which is part of the version as much as
    /// its weights (labels, heads and preprocessing change what it answers).
    static func judge(model: String, version: Int, recorded: String?, found: String, manifest: ManifestFinding? = nil,
                      loaded: Bool, production: Bool, occasion: Occasion) -> Verdict {
        guard found == recorded else {
            return judgeArtifact(model: model, version: version, recorded: recorded, found: found, loaded: loaded, production: production, occasion: occasion)
        }
        guard let manifest, manifest.found != manifest.recorded else { return .intact }
        let change = "the manifest of version \(version) of '\(model)' changed: recorded \(manifest.recorded ?? "none"), found \(manifest.found ?? "none")"
        if loaded && production {
            return .serveFromMemory(reason: change + "; production keeps serving the admitted bytes from memory: restore the file or promote another version (a restart cannot load it)")
        }
        let reason = switch occasion {
        case .startup: change + " while registryd was down"
        case .scan where loaded: change + "; unloaded (a version's manifest cannot change: publish it as a new version)"
        case .scan: change + "; a version's manifest cannot change: publish it as a new version"
        case .verify(let actor): change + " (re-verification by \(actor))"
        case .reload: change + "; not loading it"
        }
        return .quarantine(unload: loaded, reason: reason)
    }

    private static func judgeArtifact(model: String, version: Int, recorded: String?, found: String, loaded: Bool, production: Bool,
                                      occasion: Occasion) -> Verdict {
        let recordedText = recorded ?? "?"
        if loaded && production {
            let base = switch occasion {
            case .verify(let actor): "artifact bytes changed: recorded sha256 \(recordedText), found \(found) (re-verification by \(actor))"
            default: "version \(version) of '\(model)' is immutable: new bytes \(found) differ from the recorded \(recordedText)"
            }
            return .serveFromMemory(reason: base + "; production keeps serving the admitted bytes from memory: restore the file or promote another version (a restart cannot load it)")
        }
        let reason = switch occasion {
        case .startup:
            "artifact bytes changed while registryd was down: recorded \(recordedText), found \(found)"
        case .scan where loaded:
            "version \(version) of '\(model)' is immutable: new bytes \(found) differ from the recorded \(recordedText); unloaded (a version's bytes cannot change: publish new bytes as a new version)"
        case .scan:
            "version \(version) of '\(model)' is immutable: new bytes \(found) differ from the recorded \(recordedText); the recorded version keeps serving"
        case .verify(let actor):
            "artifact bytes changed: recorded sha256 \(recordedText), found \(found) (re-verification by \(actor))"
        case .reload:
            "model '\(model)' version \(version): artifact bytes changed since admission (recorded \(recordedText), found \(found)); not loading it"
        }
        return .quarantine(unload: loaded, reason: reason)
    }
}
