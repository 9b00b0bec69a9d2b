import CONNXRuntime
import Tensors

/// The ONNX Runtime C API version this module is written against (the headers' `ORT_API_VERSION`
/// at the time of writing). A newer runtime library serves older API versions, so the library
/// installed may be newer than the headers (1.32 serves version 21).
let requiredAPIVersion: UInt32 = 21

/// The function table of the loaded ONNX Runtime library.
///
/// `OrtGetApiBase()` and `GetApi` may be called from any thread and the returned table is static
/// for the life of the process (onnxruntime_c_api.h: "OrtApiBase ... GetApi"); it is never freed.
enum ORT {
    /// The function table: static, read-only data of the library (see above), hence `Sendable`.
    struct Table: @unchecked Sendable {
        let pointer: UnsafePointer<OrtApi>
    }

    /// The function table, or why it is not there. Resolved once, lazily and thread-safely
    /// (Swift globals and static lets are initialised with `swift_once`).
    static let resolved: Result<Table, RuntimeError> = {
        guard let base = OrtGetApiBase(), let getApi = base.pointee.GetApi else {
            return .failure(RuntimeError(.unavailable, "onnx runtime: OrtGetApiBase returned nothing"))
        }
        guard let api = getApi(requiredAPIVersion) else {
            let version = base.pointee.GetVersionString.map { $0().map { String(cString: $0) } } ?? "unknown"
            return .failure(RuntimeError(
                .unavailable,
                "onnx runtime \(version) does not serve c api version \(requiredAPIVersion); install onnx runtime 1.21 or newer (scripts/setup.sh)"))
        }
        return .success(Table(pointer: api))
    }()

    /// The function table; throws when the installed library is too old.
    static func api() throws(RuntimeError) -> OrtApi {
        switch resolved {
        case .success(let table): return table.pointer.pointee
        case .failure(let error): throw error
        }
    }

    /// The version string of the loaded library, e.g. "1.32.0".
    static var version: String {
        guard let base = OrtGetApiBase(), let get = base.pointee.GetVersionString else { return "unknown" }
        return get().map { String(cString: $0) } ?? "unknown"
    }

    /// Turns an `OrtStatus*` into a thrown ``RuntimeError`` and releases the status.
    /// `nil` is success (the C API's convention).
    @inline(__always)
    static func check(_ status: OpaquePointer?, _ context: @autoclosure () -> String) throws(RuntimeError) {
        guard let status else { return }
        throw error(from: status, context())
    }

    static func error(from status: OpaquePointer, _ context: String) -> RuntimeError {
        // A status returned by any API function is ours to release (onnxruntime_c_api.h:
        // "ReleaseStatus").
        let api = try? ORT.api()
        let code = api?.GetErrorCode!(status).rawValue ?? 1
        let message = api?.GetErrorMessage!(status).map { String(cString: $0) } ?? "unknown error"
        api?.ReleaseStatus!(status)
        return RuntimeError(RuntimeError.Code(ortCode: code), "\(context): \(message)")
    }
}
