import CONNXRuntime
import Tensors
import Synchronization

/// Cancels the runs it is passed to, from any thread.
///
/// Wraps an `OrtRunOptions`; `cancel()` calls `RunOptionsSetTerminate`, which onnxruntime_c_api.h
/// documents as "set a flag so that ALL incomplete OrtApi::Run calls that are using this instance
/// of OrtRunOptions will exit as soon as possible" — it is meant to be called from another
/// thread than the one blocked in `Run`. The options are released once, in `deinit`.
public final class RunCancellation: @unchecked Sendable {
    let handle: OpaquePointer
    private let cancelled = Atomic<Bool>(false)

    public init() throws(RuntimeError) {
        let api = try ORT.api()
        var options: OpaquePointer?
        try ORT.check(api.CreateRunOptions!(&options), "creating run options")
        handle = options!
    }

    /// Asks every run using this object to stop; they throw ``RuntimeError/Code/cancelled``.
    public func cancel() {
        cancelled.store(true, ordering: .sequentiallyConsistent)
        if let api = try? ORT.api(), let status = api.RunOptionsSetTerminate!(handle) {
            api.ReleaseStatus!(status)
        }
    }

    public var isCancelled: Bool { cancelled.load(ordering: .sequentiallyConsistent) }

    deinit {
        try? ORT.api().ReleaseRunOptions!(handle)
    }
}
