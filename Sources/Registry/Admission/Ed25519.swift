import COpenSSL
import Foundation

/// Ed25519 signatures of artifacts, through OpenSSL's EVP interface.
///
/// What is signed is digests as lowercase hex text (so that a signer needs no copy of a large
/// file in memory, and `openssl pkeyutl -sign -rawin` can sign it): the artifact's SHA-256 and
/// the manifest's, `"<artifact> <manifest>"` (``ArtifactVerifier``), or for a manifest that
/// declares nothing that changes answers, the artifact's alone (OPERATIONS.md, Signing). A
/// signature file holds the 64 raw signature bytes, or their base64.
public enum Ed25519 {
    /// Whether `signature` over `digestHex` verifies with the raw 32-byte `publicKey`.
    public static func verify(signature: [UInt8], digestHex: String, publicKey: [UInt8]) -> Bool {
        verify(signature: signature, message: digestHex, publicKey: publicKey)
    }

    /// Whether `signature` is an Ed25519 signature of `message`'s UTF-8 bytes by `publicKey`.
    public static func verify(signature: [UInt8], message text: String, publicKey: [UInt8]) -> Bool {
        guard publicKey.count == 32, signature.count == 64 else { return false }
        guard let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, publicKey, 32) else { return false }
        // Both freed once here (EVP_PKEY_free, EVP_MD_CTX_free: OpenSSL 3 docs).
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else { return false }
        let message = Array(text.utf8)
        return EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
    }

    /// A new key pair: (private, public), raw 32 bytes each. For tests and tooling (OPERATIONS.md shows how to make keys with openssl).
    public static func generateKeyPair() throws(RegistryError) -> (privateKey: [UInt8], publicKey: [UInt8]) {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nil) else {
            throw RegistryError(.system, "cannot create an ed25519 key context")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_keygen(context, &key) == 1, let key else {
            throw RegistryError(.system, "ed25519 key generation failed")
        }
        defer { EVP_PKEY_free(key) }
        var privateKey = [UInt8](repeating: 0, count: 32), publicKey = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_private_key(key, &privateKey, &length) == 1 else {
            throw RegistryError(.system, "cannot read the ed25519 private key")
        }
        length = 32
        guard EVP_PKEY_get_raw_public_key(key, &publicKey, &length) == 1 else {
            throw RegistryError(.system, "cannot read the ed25519 public key")
        }
        return (privateKey, publicKey)
    }

    /// Signs `digestHex` with a raw 32-byte private key.
    public static func sign(digestHex: String, privateKey: [UInt8]) throws(RegistryError) -> [UInt8] {
        try sign(message: digestHex, privateKey: privateKey)
    }

    /// Signs `message`'s UTF-8 bytes with a raw 32-byte private key.
    public static func sign(message text: String, privateKey: [UInt8]) throws(RegistryError) -> [UInt8] {
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, privateKey, privateKey.count) else {
            throw RegistryError(.invalidArgument, "not an ed25519 private key")
        }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { throw RegistryError(.system, "cannot allocate a signing context") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let message = Array(text.utf8)
        guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1,
              EVP_DigestSign(context, &signature, &length, message, message.count) == 1 else {
            throw RegistryError(.system, "ed25519 signing failed")
        }
        return signature
    }
}
