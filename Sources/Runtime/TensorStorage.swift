import CONNXRuntime
import Glibc

/// The bytes of a numeric tensor: either memory this module allocated, or the buffer of an
/// `OrtValue` that ONNX Runtime allocated for an output (kept without copying).
///
/// Thread-safety: the bytes are written only while the owning `Tensor` is being built, before
/// the storage is shared; afterwards they are only read, so sharing across threads is safe.
/// Ownership: a `.allocated` buffer is freed, and an `.ortValue` released (`ReleaseValue`,
/// onnxruntime_c_api.h), exactly once, in `deinit`.
final class TensorStorage: @unchecked Sendable {
    enum Owner {
        case allocated
        case ortValue(OpaquePointer)
    }

    let bytes: UnsafeMutableRawBufferPointer
    private let owner: Owner

    /// Allocates `byteCount` bytes, 64-byte aligned (what ONNX Runtime's own CPU allocator
    /// uses, so kernels see the same alignment either way). Uninitialised: the caller fills them.
    init(allocating byteCount: Int) {
        // One byte at least, so that an empty tensor still has a valid, distinct address.
        let base = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        bytes = UnsafeMutableRawBufferPointer(start: base, count: byteCount)
        owner = .allocated
    }

    /// Takes ownership of `value`, whose tensor data is `byteCount` bytes at `data`.
    init(ortValue value: OpaquePointer, data: UnsafeMutableRawPointer?, byteCount: Int) {
        bytes = UnsafeMutableRawBufferPointer(start: byteCount == 0 ? nil : data, count: byteCount)
        owner = .ortValue(value)
    }

    deinit {
        switch owner {
        case .allocated:
            bytes.baseAddress.map { $0.deallocate() }
        case .ortValue(let value):
            // The API table exists: this value came from it.
            try? ORT.api().ReleaseValue!(value)
        }
    }
}
