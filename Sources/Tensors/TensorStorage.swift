/// The bytes of a numeric tensor: either memory this module allocated, or a buffer that belongs
/// to another object (ONNX Runtime's `OrtValue` for an output, kept without copying) and lives
/// exactly as long as that object.
///
/// Thread-safety: the bytes are written only while the owning `Tensor` is being built, before
/// the storage is shared; afterwards they are only read, so sharing across threads is safe.
/// Ownership: an allocated buffer is freed in `deinit`; a borrowed buffer is released by its
/// keeper's own `deinit`, which runs when this storage lets the keeper go.
package final class TensorStorage: @unchecked Sendable {
    package let bytes: UnsafeMutableRawBufferPointer
    /// The object whose lifetime the borrowed bytes share; nil for memory allocated here.
    private let keeper: AnyObject?

    /// Allocates `byteCount` bytes, 64-byte aligned (what ONNX Runtime's own CPU allocator
    /// uses, so kernels see the same alignment either way). Uninitialised: the caller fills them.
    package init(allocating byteCount: Int) {
        // One byte at least, so that an empty tensor still has a valid, distinct address.
        let base = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        bytes = UnsafeMutableRawBufferPointer(start: base, count: byteCount)
        keeper = nil
    }

    /// Borrows `byteCount` bytes at `data`, which stay valid for as long as `keeper` lives.
    package init(borrowing data: UnsafeMutableRawPointer?, byteCount: Int, keeper: AnyObject) {
        bytes = UnsafeMutableRawBufferPointer(start: byteCount == 0 ? nil : data, count: byteCount)
        self.keeper = keeper
    }

    deinit {
        if keeper == nil {
            bytes.baseAddress.map { $0.deallocate() }
        }
    }
}
