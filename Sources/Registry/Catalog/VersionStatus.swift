/// A version's state as four independent facts: how far its admission went, whether it is in
/// memory, what role it plays, and what is on disk under its number.
///
/// ``VersionState`` (the catalog's column and the API's `state` string) folds these into one
/// word; that word is derived from them (``state``), so the documented strings stay as they
/// are, while a fact that the word cannot carry (production's file changed on disk, while the
/// admitted bytes keep serving from memory) is still there to be shown.
public struct VersionStatus: Sendable, Equatable, CustomStringConvertible {
    /// How far admission went.
    public enum Admission: String, Sendable, CaseIterable {
        /// Seen, not yet verified.
        case discovered
        /// Being hashed and checked.
        case verifying
        /// Its bytes, manifest and signature passed.
        case verified
        /// Refused, or failed to load.
        case failed
        /// Different bytes under its number: never loaded again.
        case quarantined
    }

    /// Whether its servable is in memory.
    public enum Residency: String, Sendable, CaseIterable {
        case unloaded, loading, loaded
    }

    /// What it does for its model.
    public enum Role: String, Sendable, CaseIterable {
        /// Nothing: ready to be given a role, or retired when unloaded.
        case none
        /// The production alias points at it.
        case production
        /// Marked as the next production.
        case candidate
        /// Receives mirrored traffic.
        case shadow
    }

    /// What is on disk at its path.
    public enum File: String, Sendable, CaseIterable {
        /// The admitted bytes (or not yet hashed).
        case present
        /// Gone or unreadable.
        case missing
        /// Bytes other than the admitted ones: quarantined; a loaded production keeps serving
        /// the admitted bytes from memory, and no restart can load them again.
        case changed
    }

    public var admission: Admission
    public var residency: Residency
    public var role: Role
    public var file: File

    public init(admission: Admission, residency: Residency, role: Role, file: File) {
        self.admission = admission
        self.residency = residency
        self.role = role
        self.file = file
    }

    /// The facts behind a recorded state, with what is known of the file.
    public init(_ state: VersionState, file: File = .present) {
        switch state {
        case .discovered: self.init(admission: .discovered, residency: .unloaded, role: .none, file: file)
        case .verifying: self.init(admission: .verifying, residency: .unloaded, role: .none, file: file)
        case .loading: self.init(admission: .verified, residency: .loading, role: .none, file: file)
        case .ready: self.init(admission: .verified, residency: .loaded, role: .none, file: file)
        case .candidate: self.init(admission: .verified, residency: .loaded, role: .candidate, file: file)
        case .live: self.init(admission: .verified, residency: .loaded, role: .production, file: file)
        case .shadow: self.init(admission: .verified, residency: .loaded, role: .shadow, file: file)
        case .retired: self.init(admission: .verified, residency: .unloaded, role: .none, file: file)
        case .failed: self.init(admission: .failed, residency: .unloaded, role: .none, file: file)
        case .quarantined: self.init(admission: .quarantined, residency: .unloaded, role: .none, file: file)
        case .missing: self.init(admission: .verified, residency: .unloaded, role: .none, file: .missing)
        }
    }

    /// The one word the catalog and the API use. Refusals win over everything; a missing file
    /// over roles (the catalog has always said `missing` for a version whose file is gone,
    /// loaded or not); a changed file does not change the word, since the admitted bytes still
    /// serve: ``file`` says it.
    public var state: VersionState {
        switch admission {
        case .failed: return .failed
        case .quarantined: return .quarantined
        case .discovered: return .discovered
        case .verifying: return .verifying
        case .verified: break
        }
        if file == .missing { return .missing }
        switch residency {
        case .loading: return .loading
        case .unloaded: return .retired
        case .loaded:
            switch role {
            case .none: return .ready
            case .candidate: return .candidate
            case .production: return .live
            case .shadow: return .shadow
            }
        }
    }

    public var description: String {
        "\(state.rawValue) (admission \(admission.rawValue), \(residency.rawValue), role \(role.rawValue), file \(file.rawValue))"
    }
}
