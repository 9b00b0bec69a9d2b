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
        /// The manifest's text as read, for the catalog.
        public var manifestText: String?
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
            do throws(RegistryError) {
                manifest = try Manifest.parse(file: manifestPath, data: data)
                manifestText = String(decoding: data, as: UTF8.self)
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
            guard let key = trustedKeys.sorted(by: { $0.key < $1.key }).first(where: {
                Ed25519.verify(signature: signature, digestHex: digest.hex, publicKey: $0.value)
            }) else {
                return .failure(Failure(state: .quarantined, reason: "bad signature: '\(path)' does not verify with any trusted key",
                                        sha256: digest.hex, size: digest.size))
            }
            verdict.signatureStatus = "valid"
            verdict.signatureKey = key.key
        } else if requireSignature {
            return .failure(Failure(state: .quarantined, reason: "unsigned: the model's policy requires a signature and the manifest names none",
                                    sha256: digest.hex, size: digest.size))
        }
        return .success(verdict)
    }
}
