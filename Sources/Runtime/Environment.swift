import CONNXRuntime
import Tensors
import Synchronization

/// The process-wide ONNX Runtime environment: logging, and the thread pools that every session
/// shares unless it asks for its own.
///
/// ONNX Runtime allows one `OrtEnv` per process (onnxruntime_c_api.h, `CreateEnv`: "only one
/// instance of OrtEnv can be created"), so there is one `Environment`, made by the first call
/// of ``shared(_:)``; later calls with another configuration throw rather than silently
/// ignoring it. The environment lives until the process ends: sessions keep a reference to it,
/// and ONNX Runtime requires it to outlive them.
///
/// Thread-safety: `OrtEnv` and the CPU `OrtMemoryInfo` are only read after creation;
/// ONNX Runtime creates sessions against one env from many threads (its own test suites do).
public final class Environment: @unchecked Sendable {
    /// How the shared thread pools and logging are set up.
    public struct Configuration: Sendable, Equatable {
        /// Threads inside one operator (matrix products, convolutions); 0 lets ONNX Runtime
        /// choose (one per physical core).
        public var intraOpThreads: Int
        /// Threads running independent operators in parallel; 1 runs them in sequence.
        public var interOpThreads: Int
        /// Whether idle pool threads spin before sleeping: lower latency, more CPU.
        public var allowSpinning: Bool
        /// ONNX Runtime's own log level (it logs to standard error).
        public var logLevel: LogLevel

        public init(
            intraOpThreads: Int = 0, interOpThreads: Int = 1, allowSpinning: Bool = true,
            logLevel: LogLevel = .warning
        ) {
            self.intraOpThreads = intraOpThreads
            self.interOpThreads = interOpThreads
            self.allowSpinning = allowSpinning
            self.logLevel = logLevel
        }
    }

    /// ONNX Runtime's log severity levels (`OrtLoggingLevel`).
    public enum LogLevel: UInt32, Sendable {
        case verbose = 0, info, warning, error, fatal
    }

    public let configuration: Configuration
    /// The `OrtEnv*`; released never (see the type's comment).
    let handle: OpaquePointer
    /// A CPU `OrtMemoryInfo*` describing buffers this module allocates.
    let cpuMemoryInfo: OpaquePointer

    private static let instance = Mutex<Environment?>(nil)

    /// The process's environment, made with `configuration` on first use.
    public static func shared(_ configuration: Configuration = Configuration()) throws(RuntimeError) -> Environment {
        let result: Result<Environment, RuntimeError> = instance.withLock { current in
            if let current {
                guard current.configuration == configuration else {
                    return .failure(RuntimeError(
                        .invalidArgument,
                        "the onnx runtime environment already exists with \(current.configuration); one per process"))
                }
                return .success(current)
            }
            do throws(RuntimeError) {
                let made = try Environment(configuration)
                current = made
                return .success(made)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private init(_ configuration: Configuration) throws(RuntimeError) {
        guard configuration.intraOpThreads >= 0, configuration.interOpThreads >= 0 else {
            throw RuntimeError(.invalidArgument, "thread counts must be zero or more")
        }
        let api = try ORT.api()
        var threading: OpaquePointer?
        try ORT.check(api.CreateThreadingOptions!(&threading), "creating threading options")
        defer { api.ReleaseThreadingOptions!(threading) }
        try ORT.check(
            api.SetGlobalIntraOpNumThreads!(threading, Int32(configuration.intraOpThreads)),
            "setting intra-op threads")
        try ORT.check(
            api.SetGlobalInterOpNumThreads!(threading, Int32(configuration.interOpThreads)),
            "setting inter-op threads")
        try ORT.check(
            api.SetGlobalSpinControl!(threading, configuration.allowSpinning ? 1 : 0),
            "setting spin control")
        var env: OpaquePointer?
        try ORT.check(
            api.CreateEnvWithGlobalThreadPools!(
                OrtLoggingLevel(configuration.logLevel.rawValue), "registryd", threading, &env),
            "creating the onnx runtime environment")
        var memoryInfo: OpaquePointer?
        try ORT.check(
            api.CreateCpuMemoryInfo!(OrtDeviceAllocator, OrtMemTypeDefault, &memoryInfo),
            "creating cpu memory info")
        self.handle = env!
        self.cpuMemoryInfo = memoryInfo!
        self.configuration = configuration
    }

    /// The version of the loaded ONNX Runtime library, e.g. "1.32.0".
    public var version: String { ORT.version }

    /// The execution providers the loaded library offers, e.g. `["CPUExecutionProvider"]`;
    /// `"CUDAExecutionProvider"` appears only in a library built with CUDA.
    public var availableProviders: [String] {
        guard let api = try? ORT.api() else { return [] }
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        var count: Int32 = 0
        guard api.GetAvailableProviders!(&names, &count) == nil, let names else { return [] }
        defer { _ = api.ReleaseAvailableProviders!(names, count) }
        return (0..<Int(count)).compactMap { names[$0].map { String(cString: $0) } }
    }
}
