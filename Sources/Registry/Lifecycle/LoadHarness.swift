/// One version's way into memory, whatever brings it there (a new artifact, the startup
/// restore, a production whose file came back, a rollback to a retired version): TF Serving's
/// loader harness, as a pure state machine. The lifecycle feeds it events and carries out the
/// actions it returns: checking (hashing) and loading run on the loader thread, asking the
/// memory budget and recording the outcome on the lifecycle's queue.
///
/// Every load goes check, then room, then load, so that every cause passes the same integrity
/// rule and the same memory budget (`load_order`), and a stop abandons whatever is in flight.
struct LoadHarness: Equatable, CustomStringConvertible {
    /// Why the version is being loaded; it changes only how the outcome is recorded.
    enum Cause: String, Equatable, CaseIterable {
        /// A new artifact in the model root.
        case admission
        /// A version that served before the daemon stopped.
        case restore
        /// Production whose file came back after it was missing.
        case reappearance
        /// A retired version that a rollback points production at.
        case rollback
    }

    enum State: Equatable, CaseIterable {
        /// Nothing done yet.
        case new
        /// Its file is being checked (hashed, and for a new artifact its manifest and signature).
        case checking
        /// The memory budget is being asked for room.
        case awaitingRoom
        /// ONNX Runtime is loading it and running its warm-up.
        case loading
        /// Loaded: the outcome is recorded. Terminal.
        case ready
        /// Still being written, or changed between its check and its load: left for a later scan,
        /// which judges the file again. Terminal.
        case deferred
        /// Its bytes or its load failed it. Terminal.
        case failed
        /// It does not fit the memory budget under `budget_first`. Terminal.
        case refused
        /// The daemon stopped meanwhile; a late result is ignored. Terminal.
        case abandoned

        var isTerminal: Bool {
            switch self {
            case .ready, .deferred, .failed, .refused, .abandoned: true
            case .new, .checking, .awaitingRoom, .loading: false
            }
        }
    }

    /// What the check found (see ``ArtifactIntegrity`` and ``ArtifactVerifier``).
    enum Check: Equatable, CaseIterable {
        /// The bytes to load: the admitted ones, or a new artifact that passed verification.
        case passed
        /// The file changed while it was being checked.
        case stillBeingWritten
        /// Refused: failed or quarantined, with the reason, recorded by the owner.
        case refused
    }

    /// The memory budget's answer.
    enum Room: Equatable, CaseIterable {
        /// It fits (or there is no budget; or it shares the session of identical bytes).
        case fits
        /// Over the budget, loaded anyway (`availability_first`); the overrun is logged.
        case overBudget
        /// It does not fit even after unloading what may be unloaded (`budget_first`).
        case refused
    }

    enum Event: Equatable {
        case start
        case checked(Check)
        case room(Room)
        case loaded
        case loadFailed
        /// The file's identity (size, time, inode) differs from what was checked, before or after
        /// the load: what was loaded may not be what was hashed.
        case changedUnderLoad
        case stopping
    }

    enum Action: Equatable {
        /// Check the file on the loader thread, then feed ``Event/checked(_:)``.
        case check
        /// Ask the memory budget on the queue, then feed ``Event/room(_:)``.
        case askForRoom
        /// Log that the budget is exceeded and the load goes ahead (`availability_first`).
        case logOverrun
        /// Load on the loader thread, then feed ``Event/loaded`` or ``Event/loadFailed``.
        case load
        /// Record the outcome (the harness's terminal state) as its cause requires.
        case finish
    }

    let cause: Cause
    private(set) var state: State = .new

    init(cause: Cause, state: State = .new) {
        self.cause = cause
        self.state = state
    }

    /// The next state and the actions that follow an event. An event that does not belong to the
    /// current state (a late result after a stop, say) changes nothing and asks for nothing.
    mutating func handle(_ event: Event) -> [Action] {
        switch (state, event) {
        case (.new, .start):
            state = .checking
            return [.check]
        case (.checking, .checked(.passed)):
            state = .awaitingRoom
            return [.askForRoom]
        case (.checking, .checked(.stillBeingWritten)):
            state = .deferred
            return [.finish]
        case (.checking, .checked(.refused)):
            state = .failed
            return [.finish]
        case (.awaitingRoom, .room(.fits)):
            state = .loading
            return [.load]
        case (.awaitingRoom, .room(.overBudget)):
            state = .loading
            return [.logOverrun, .load]
        case (.awaitingRoom, .room(.refused)):
            state = .refused
            return [.finish]
        case (.loading, .loaded):
            state = .ready
            return [.finish]
        case (.loading, .loadFailed):
            state = .failed
            return [.finish]
        case (.loading, .changedUnderLoad):
            state = .deferred
            return [.finish]
        case (let current, .stopping) where !current.isTerminal:
            state = .abandoned
            return [.finish]
        default:
            return []
        }
    }

    var description: String { "\(cause.rawValue) \(state)" }
}
