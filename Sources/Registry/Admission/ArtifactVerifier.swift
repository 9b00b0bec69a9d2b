import Foundation

/// Proves what an artifact is: its SHA-256, and the manifest's expected hash and signature.
/// Pure of catalog and serving state: it reads files and returns a verdict.
public struct ArtifactVerifier: Sendable {
    /// Trusted Ed25519 public keys by name (raw 32 bytes).
    public let trustedKeys: [String: [UInt8]]

    public init(trustedKeys: [String: String]) {
        var keys: [String: [UInt8]] = [:]
        for (name, base64) in trustedKeys {
            if let data = Data(base64Encoded: base64), data.count == 32 { keys[name] = Array(data) }
        }
        self.trustedKeys = keys
    }

    public struct Verdict: Sendable, Equatable {
        public var sha256: String
        public var size: Int64
        public var manifest: Manifest?
        /// The manifest's text as read, for the catalog (UTF-8, so its bytes are the file's).
        public var manifestText: String?
        /// The SHA-256 of the manifest's bytes, nil without a manifest.
        public var manifestSHA256: String? { manifestText.map { SHA256.hex(of: Array($0.utf8)) } }
        /// Whether the signature covers the manifest as well as the artifact.
        public var signatureCoversManifest = false
        public var signatureStatus: String
        public var signatureKey: String?
    }

    /// Why verification failed, and whether the version must be quarantined (its bytes are
    /// not what they claim to be) or merely failed (unreadable, malformed manifest).
    public struct Failure: Error, Sendable, Equatable {
        public var state: VersionState
        public var reason: String
        /// The digest, when it could be computed.
        public var sha256: String?
        public var size: Int64?
    }

    public func verify(_ observation: ArtifactObservation, requireSignature: Bool) -> Result<Verdict, Failure> {
        var manifest: Manifest?
        var manifestText: String?
        if let manifestPath = observation.manifestPath {
            guard let data = FileManager.default.contents(atPath: manifestPath) else {
                return .failure(Failure(state: .failed, reason: "manifest '\(manifestPath)' cannot be read"))
            }
            // The text is recorded and stands for the bytes (their hash is the manifest's part of
            // the version's identity): it must be UTF-8, as JSON text exchanged between systems
            // must be (RFC 8259), so that decoding it loses nothing.
            guard let text = String(data: data, encoding: .utf8), Array(text.utf8) == Array(data) else {
                return .failure(Failure(state: .failed, reason: "invalid manifest: \(manifestPath): not UTF-8 text"))
            }
            do throws(RegistryError) {
                manifest = try Manifest.parse(file: manifestPath, data: data)
                manifestText = text
            } catch {
                return .failure(Failure(state: .failed, reason: "invalid manifest: \(error.message)"))
            }
        }
        let digest: (hex: String, size: Int64)
        do throws(RegistryError) {
            digest = try SHA256.file(at: observation.path)
        } catch {
            return .failure(Failure(state: .failed, reason: error.message))
        }
        if let expected = manifest?.sha256, expected != digest.hex {
            return .failure(Failure(
                state: .quarantined,
                reason: "sha256 mismatch: manifest expects \(expected), file has \(digest.hex)",
                sha256: digest.hex, size: digest.size))
        }
        var verdict = Verdict(sha256: digest.hex, size: digest.size, manifest: manifest, manifestText: manifestText,
                              signatureStatus: "unsigned", signatureKey: nil)
        if let signatureFile = manifest?.signatureFile {
            let path = "\(observation.versionDirectory)/\(signatureFile)"
            guard let data = FileManager.default.contents(atPath: path) else {
                return .failure(Failure(state: .quarantined, reason: "signature file '\(path)' named by the manifest cannot be read",
                                        sha256: digest.hex, size: digest.size))
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let signature = data.count == 64 ? Array(data) : (Data(base64Encoded: text).map(Array.init) ?? [])
            guard signature.count == 64 else {
                return .failure(Failure(state: .quarantined, reason: "signature file '\(path)' holds no ed25519 signature (64 bytes, raw or base64)",
                                        sha256: digest.hex, size: digest.size))
            }
            let keys = trustedKeys.sorted(by: { $0.key < $1.key })
            // What a signature signs: the artifact's digest and the manifest's, as
            // "<artifact sha256> <manifest sha256>" in lowercase hex, so that labels, heads or a
            // preprocessing contract cannot be swapped under a signed model. A signature of the
            // artifact's digest alone (the form before manifests carried those) stays valid only
            // for a manifest that declares none of them.
            let covering = "\(digest.hex) \(verdict.manifestSHA256 ?? "")"
            if let key = keys.first(where: { Ed25519.verify(signature: signature, message: covering, publicKey: $0.value) }) {
                verdict.signatureCoversManifest = true
                verdict.signatureKey = key.key
            } else if let key = keys.first(where: { Ed25519.verify(signature: signature, digestHex: digest.hex, publicKey: $0.value) }) {
                if let declared = manifest?.servingKeys, !declared.isEmpty {
                    return .failure(Failure(state: .quarantined,
                                            reason: "signature '\(path)' covers the artifact only, but the manifest declares \(declared.joined(separator: ", ")): sign the artifact's and the manifest's SHA-256 together (OPERATIONS.md, Signing)",
                                            sha256: digest.hex, size: digest.size))
                }
                verdict.signatureKey = key.key
            } else {
                return .failure(Failure(state: .quarantined, reason: "bad signature: '\(path)' does not verify with any trusted key",
                                        sha256: digest.hex, size: digest.size))
            }
            verdict.signatureStatus = "valid"
        } else if requireSignature {
            return .failure(Failure(state: .quarantined, reason: "unsigned: the model's policy requires a signature and the manifest names none",
                                    sha256: digest.hex, size: digest.size))
        }
        return .success(verdict)
    }
}
