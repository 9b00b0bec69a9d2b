/// An error of the registry: what went wrong, in a lowercase sentence that names the object
/// (`model 'digits' version 3 not found`), with a code that decides how it is reported
/// (one function, in serving, maps codes to HTTP statuses).
public struct RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// A configuration file or a manifest is invalid.
        case invalidConfiguration
        /// A request or argument is malformed.
        case invalidArgument
        /// The model or version does not exist.
        case notFound
        /// The model or version exists but cannot do this now (not ready, not loaded...).
        case unavailable
        /// The request conflicts with the current state (incompatible signature...).
        case conflict
        /// The artifact failed verification (hash, signature, completeness).
        case verificationFailed
        /// The model failed to load or to run.
        case modelFailure
        /// The catalog (SQLite) failed.
        case database
        /// A system call failed.
        case system
        /// The request asks for something this build does not do.
        case notImplemented
        /// The path exists but not with this method (405, with `Allow`).
        case methodNotAllowed
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

extension RegistryError {
    /// The one place where error codes become HTTP statuses (the statuses Triton uses for the
    /// same situations on the v2 endpoints).
    public var httpStatus: Int {
        switch code {
        case .invalidConfiguration, .invalidArgument: 400
        case .notFound: 404
        case .conflict: 409
        case .verificationFailed: 422
        case .unavailable: 503
        case .notImplemented: 501
        case .methodNotAllowed: 405
        case .modelFailure, .database, .system: 500
        }
    }
}
