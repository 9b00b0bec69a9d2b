/// How a ``Session`` is built.
public struct SessionOptions: Sendable, Equatable {
    /// ONNX Runtime's graph optimisation levels (`GraphOptimizationLevel`).
    public enum OptimizationLevel: UInt32, Sendable {
        case disabled = 0, basic = 1, extended = 2, all = 99
    }

    /// Where the model's operators run.
    public enum ExecutionProvider: Sendable, Equatable, CustomStringConvertible {
        case cpu
        /// NVIDIA GPU through ONNX Runtime's CUDA provider; operators it lacks fall back to CPU.
        /// Only when the loaded library offers it (see `Environment.availableProviders`).
        case cuda(deviceID: Int)

        public var description: String {
            switch self {
            case .cpu: "cpu"
            case .cuda(let device): "cuda:\(device)"
            }
        }
    }

    public var optimizationLevel: OptimizationLevel
    /// `nil`: use the environment's shared intra-op pool. A number: the session gets a pool of
    /// its own with that many threads.
    public var intraOpThreads: Int?
    public var executionProvider: ExecutionProvider

    public init(
        optimizationLevel: OptimizationLevel = .all, intraOpThreads: Int? = nil,
        executionProvider: ExecutionProvider = .cpu
    ) {
        self.optimizationLevel = optimizationLevel
        self.intraOpThreads = intraOpThreads
        self.executionProvider = executionProvider
    }
}
