import Runtime

/// A version that loaded but must not answer: every prediction fails with the reason (500),
/// which names what is wrong. Used where a version's loading cannot fail any more but what it
/// was loaded with turns out not to fit (see `ONNXServable.serving`).
///
/// Thread-safety: immutable.
public final class UnservableVersion: Servable {
    public let signature: ServableSignature
    public let reason: String

    public init(signature: ServableSignature, reason: String) {
        self.signature = signature
        self.reason = reason
    }

    public var runsOnCallingThread: Bool { true }

    public func predict(_ inputs: [String: Tensor], outputs: [String]?) throws(RegistryError) -> Prediction {
        throw RegistryError(.modelFailure, reason)
    }
}
