import Runtime

/// What the lifecycle keeps beside one version's ``LoadHarness`` while it runs: the inputs of
/// its steps and what each step found.
///
/// Confined to the lifecycle's queue, which is why it is `@unchecked Sendable`: the loader
/// thread gets copies of what it needs, and only carries the reference back to the queue, where
/// its results are stored here.
final class LoadJob: @unchecked Sendable {
    let key: Lifecycle.Key
    var harness: LoadHarness
    /// The version as recorded when the job began (path, recorded hash, manifest).
    var record: VersionRecord
    /// The artifact as the scan saw it (a new artifact only).
    let observation: ArtifactObservation?
    /// How many jobs before this one tried the same load (a restore tried again after its file
    /// changed under the load).
    var attempt = 1
    /// Told the outcome once the job ends (a rollback waits for it).
    let completion: (@Sendable (LoadJob) -> Void)?

    // What the check found.
    /// The file's identity read before it was checked: the load must find the same one.
    var checkedIdentity: (size: Int64, mtime: Double, inode: UInt64)?
    /// The bytes to load: their hash and size, and for a new artifact its manifest and signature.
    var verdict: ArtifactVerifier.Verdict?
    /// Why the check refused it (failed or quarantined).
    var refusal: ArtifactVerifier.Failure?
    /// For a known version whose artifact or manifest holds other bytes: what was found.
    var changedDigest: VersionDigest?
    /// The manifest's stamp when it was checked intact: the next scan compares with it.
    var manifestStamp: FileStamp?

    // What the budget said.
    /// Identical bytes already loaded, whose session this version shares.
    var twin: LoadedVersion?
    /// The memory this load holds in the budget while it runs.
    var reservedBytes: Int64 = 0
    /// The budget's figures, when it was exceeded or refused.
    var budgetMessage: String?

    // What the load gave.
    /// What serves the version, made on the loader thread.
    var servable: (any Servable)?
    var loadError: String?
    /// A pipeline's graph, read from the checked bytes.
    var pipeline: PipelineSpec?
    /// Why a pipeline cannot be made yet (a model it calls has nothing serving): the job waits,
    /// parked, and is tried again as versions change.
    var waitingFor: String?
    var loadSeconds: Double = 0
    var measuredBytes: Int64?

    init(key: Lifecycle.Key, cause: LoadHarness.Cause, record: VersionRecord, observation: ArtifactObservation? = nil,
         completion: (@Sendable (LoadJob) -> Void)? = nil) {
        self.key = key
        self.harness = LoadHarness(cause: cause)
        self.record = record
        self.observation = observation
        self.completion = completion
    }

    /// The path of the file to check and load.
    var path: String { observation?.path ?? record.path }

    /// Why the job did not end ready, in a sentence, for the log and the operator.
    var problem: String {
        switch harness.state {
        case .refused: budgetMessage.map { "does not fit: \($0)" } ?? "does not fit the memory budget"
        case .failed: refusal?.reason ?? loadError ?? "load failed"
        case .abandoned: "registryd is stopping"
        case .deferred: loadError ?? "still being written"
        default: ""
        }
    }
}
