import CONNXRuntime

/// An output `OrtValue` whose tensor data a `Tensor` reads in place: it is released
/// (`ReleaseValue`, onnxruntime_c_api.h) exactly once, when the last tensor storage that borrows
/// its buffer lets it go.
final class OutputValue {
    private let value: OpaquePointer
    private let api: OrtApi

    init(_ value: OpaquePointer, api: OrtApi) {
        self.value = value
        self.api = api
    }

    deinit {
        api.ReleaseValue!(value)
    }
}
