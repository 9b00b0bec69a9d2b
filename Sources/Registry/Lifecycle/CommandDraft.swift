/// A command at work: a copy of the registry state with the command's changes, the catalog
/// writes that record them (in order), and what the owner does once they are committed.
///
/// Its methods are the commands and their steps (`CommandDraft+*.swift`). They are pure: no I/O,
/// no clock (the command's time is `now`), no lock. A command is therefore a function from a
/// state to a new state plus writes, tested as one (`CommandDraftTests`), and
/// ``Lifecycle/command(_:_:)`` is the one owner that commits the writes and swaps the state in.
struct CommandDraft {
    /// What the owner does after the commit, in order: things outside the registry state that
    /// must follow a change only once it is durable.
    enum Effect {
        /// Starts a new shadow report for the model (a shadow set), or ends it (nil).
        case configureMirror(model: String, ShadowSpec?)
        /// A rollout's window starts over from the serving counters as they are then.
        case restartWindow(model: String)
        case log(Log.Level, StaticString, [(String, String)])
    }

    var state: RegistryState
    let config: DaemonConfig
    /// The command's time: every row and event it writes carries it.
    let now: Double
    private(set) var writes: [CatalogWrite] = []
    private(set) var effects: [Effect] = []
    /// The write whose event the command reports (``CommandOutcome/eventID``).
    var reported: Int?

    init(_ state: RegistryState, config: DaemonConfig, now: Double) {
        self.state = state
        self.config = config
        self.now = now
    }

    /// Adds a write; returns its place in the list.
    @discardableResult
    mutating func write(_ change: CatalogWrite) -> Int {
        writes.append(change)
        return writes.count - 1
    }

    mutating func effect(_ effect: Effect) { effects.append(effect) }

    /// A log line, written once the command has committed (a failed command logs only its error).
    mutating func log(_ level: Log.Level, _ message: StaticString, _ metadata: [(String, String)] = []) {
        effects.append(.log(level, message, metadata))
    }

    /// Takes what the database assigned: a new rollout's row id.
    mutating func adopt(_ receipts: [WriteReceipt]) {
        for (change, receipt) in zip(writes, receipts) {
            if case .saveRollout(let rollout, _) = change, rollout.id == 0, let id = receipt.rowID,
               state.rollouts[rollout.model]?.id == 0 {
                state.rollouts[rollout.model]?.id = id
            }
        }
    }
}
