import Runtime

/// One ONNX version as a servable: an ONNX Runtime session and the identity of its bytes.
///
/// Thread-safety: immutable; `Session.run` is thread-safe (see `Session`).
public final class ONNXServable: Servable {
    public let session: Session
    public let provenance: Provenance
    public let signature: ServableSignature

    /// `labels`: class names per output (the manifest's `labels`).
    public init(session: Session, provenance: Provenance, labels: [String: [String]] = [:]) {
        self.session = session
        self.provenance = provenance
        self.signature = ServableSignature(inputs: session.inputs, outputs: session.outputs, labels: labels)
    }

    /// A session on its own single intra-op thread runs on its caller's thread; one on ONNX
    /// Runtime's shared pool does its work on the pool's threads.
    public var runsOnCallingThread: Bool { session.intraOpThreads == 1 }

    public func predict(_ inputs: [String: Tensor], outputs: [String]?, context: PredictionContext) throws(RegistryError) -> Prediction {
        do throws(RuntimeError) {
            return Prediction(outputs: try session.run(inputs, outputs: outputs))
        } catch {
            throw RegistryError(running: provenance, error)
        }
    }
}

extension RegistryError {
    /// A failed run of `provenance`'s session: inputs that the model's signature refuses are the
    /// client's fault (400); anything else failed inside the model (500).
    init(running provenance: Provenance, _ error: RuntimeError) {
        let code: Code = switch error.code {
        case .unknownName, .missingInput, .typeMismatch, .shapeMismatch, .invalidTensor: .invalidArgument
        default: .modelFailure
        }
        self.init(code, "\(provenance): \(error.message)")
    }
}
