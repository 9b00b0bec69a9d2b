/// An error from ONNX Runtime, or from the checks made before calling it (here, on tensors; in
/// the Runtime module, on a session's names, types and shapes). It lives beside `Tensor` because
/// building a tensor makes those checks; the Runtime module turns ONNX Runtime's statuses into it.
///
/// `code` says what kind of failure it was; `message` is a lowercase sentence that names the
/// object at fault (the input, the file, the element type). Errors that come from ONNX Runtime
/// carry its own message verbatim after ours, so nothing it said is lost.
public struct RuntimeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Equatable {
        // ONNX Runtime's own codes (OrtErrorCode), one case each.
        case fail
        case invalidArgument
        case noSuchFile
        case noModel
        case engineError
        case runtimeException
        case invalidProtobuf
        case modelLoaded
        case notImplemented
        case invalidGraph
        case executionProviderFailure
        // Checks made by this module before ONNX Runtime sees the request.
        /// An input or output name the model does not have.
        case unknownName
        /// A required input was not given.
        case missingInput
        /// The tensor's element type is not the one the model declares.
        case typeMismatch
        /// The tensor's rank or a fixed dimension differs from the model's declaration.
        case shapeMismatch
        /// A tensor whose bytes do not match its shape and type, or whose values are invalid.
        case invalidTensor
        /// The model uses a type this module does not serve (sequences, maps, float8, int4...).
        case unsupportedType
        /// The run was cancelled through ``RunCancellation``.
        case cancelled
        /// The ONNX Runtime shared library could not be used.
        case unavailable
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

extension RuntimeError.Code {
    /// Maps ONNX Runtime's numeric `OrtErrorCode` to a case.
    package init(ortCode raw: UInt32) {
        switch raw {
        case 2: self = .invalidArgument
        case 3: self = .noSuchFile
        case 4: self = .noModel
        case 5: self = .engineError
        case 6: self = .runtimeException
        case 7: self = .invalidProtobuf
        case 8: self = .modelLoaded
        case 9: self = .notImplemented
        case 10: self = .invalidGraph
        case 11: self = .executionProviderFailure
        default: self = .fail
        }
    }
}
