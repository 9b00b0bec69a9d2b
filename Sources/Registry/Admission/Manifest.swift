import Foundation
import InferenceCodec
import Runtime

/// `manifest.json`, optional beside a `model.onnx`: what the team that made the model says of it.
public struct Manifest: Sendable, Equatable {
    public var description: String?
    /// Class names per output, by output name.
    public var labels: [String: [String]]
    /// The SHA-256 the artifact must have (lowercase hex).
    public var sha256: String?
    /// The file, beside the model, that holds an Ed25519 signature of the artifact's SHA-256.
    public var signatureFile: String?
    /// Free-form metadata, kept as JSON text.
    public var metadataJSON: String?
    /// Inputs for the warm-up run, as a KServe v2 JSON request body (`{"inputs": [...]}`), used
    /// instead of zeros: a model whose zeros are meaningless (or refused) warms up on real data.
    public var sampleInputsJSON: String?
    /// Named heads per output, by output name: consecutive slices of the output's last dimension,
    /// each served as an output of its own (see ``Head``).
    public var heads: [String: [Head]]
    /// Preprocessing contracts per input, by input name: the raw form clients send and how it
    /// becomes the model's input (see ``Preprocess``).
    public var preprocess: [String: Preprocess]

    public init(description: String? = nil, labels: [String: [String]] = [:], sha256: String? = nil,
                signatureFile: String? = nil, metadataJSON: String? = nil, sampleInputsJSON: String? = nil,
                heads: [String: [Head]] = [:], preprocess: [String: Preprocess] = [:]) {
        self.description = description
        self.labels = labels
        self.sha256 = sha256
        self.signatureFile = signatureFile
        self.metadataJSON = metadataJSON
        self.sampleInputsJSON = sampleInputsJSON
        self.heads = heads
        self.preprocess = preprocess
    }

    /// Parses and validates a manifest; every error names the file and the key.
    public static func parse(file: String, data: Data) throws(RegistryError) -> Manifest {
        guard data.count <= 1 << 20 else {
            throw RegistryError(.invalidConfiguration, "\(file): manifest larger than 1 MiB")
        }
        var r = try ConfigReader(file: file, data: data)
        var manifest = Manifest()
        manifest.description = try r.string("description")
        if let sha = try r.string("sha256") {
            let lower = sha.lowercased()
            guard lower.utf8.count == 64, lower.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
                throw RegistryError(.invalidConfiguration, "\(file): key 'sha256': expected 64 hexadecimal digits, got \"\(sha)\"")
            }
            manifest.sha256 = lower
        }
        if let signature = try r.string("signature") {
            guard !signature.isEmpty, !signature.contains("/"), !signature.hasPrefix(".") else {
                throw RegistryError(.invalidConfiguration, "\(file): key 'signature': expected a file name beside the model (no '/'), got \"\(signature)\"")
            }
            manifest.signatureFile = signature
        }
        if let labels = r.any("labels") {
            guard let object = labels as? [String: Any] else {
                throw RegistryError(.invalidConfiguration, "\(file): key 'labels': expected an object of output name to an array of class names, got \(ConfigReader.describe(labels))")
            }
            for (output, names) in object {
                guard let list = names as? [Any], let strings = list as? [String] else {
                    throw RegistryError(.invalidConfiguration, "\(file): key 'labels.\(output)': expected an array of strings")
                }
                manifest.labels[output] = strings
            }
        }
        if let metadata = r.any("metadata") {
            guard metadata is [String: Any] else {
                throw RegistryError(.invalidConfiguration, "\(file): key 'metadata': expected an object, got \(ConfigReader.describe(metadata))")
            }
            let json = try? JSONSerialization.data(withJSONObject: metadata, options: [.sortedKeys])
            manifest.metadataJSON = json.map { String(decoding: $0, as: UTF8.self) }
        }
        if let sample = r.any("sample_inputs") {
            guard sample is [String: Any], let json = try? JSONSerialization.data(withJSONObject: sample, options: [.sortedKeys]) else {
                throw RegistryError(.invalidConfiguration, "\(file): key 'sample_inputs': expected a KServe v2 request object {\"inputs\": [...]}, got \(ConfigReader.describe(sample))")
            }
            do throws(InferenceRequest.Failure) {
                _ = try InferenceRequest.decode(Array(json), headerLength: nil)
            } catch {
                throw RegistryError(.invalidConfiguration, "\(file): key 'sample_inputs': \(error.message)")
            }
            manifest.sampleInputsJSON = String(decoding: json, as: UTF8.self)
        }
        if let heads = r.any("heads") {
            manifest.heads = try Manifest.parseHeads(heads, file: file)
            for output in manifest.labels.keys.sorted() where manifest.heads.values.joined().contains(where: { $0.name == output }) {
                throw RegistryError(.invalidConfiguration, "\(file): key 'labels.\(output)': '\(output)' is a head; give its class names in its entry under 'heads'")
            }
        }
        if let preprocess = r.any("preprocess") {
            manifest.preprocess = try Manifest.parsePreprocess(preprocess, file: file)
        }
        try r.finish()
        return manifest
    }

    /// The keys it declares that change what the version answers (class names, heads, the
    /// inputs' preprocessing): a signature must cover the manifest when any is declared.
    var servingKeys: [String] {
        var keys: [String] = []
        if !labels.isEmpty { keys.append("labels") }
        if !heads.isEmpty { keys.append("heads") }
        if !preprocess.isEmpty { keys.append("preprocess") }
        return keys
    }

    /// The sample inputs as tensors (validated when the manifest was parsed).
    func sampleInputs() -> [String: Tensor]? {
        guard let text = sampleInputsJSON else { return nil }
        return try? InferenceRequest.decode(Array(text.utf8), headerLength: nil).inputs
    }
}
