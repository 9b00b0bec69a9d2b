import Foundation
import Runtime

/// The owner of every load in flight: it feeds each version's ``LoadHarness`` and carries out
/// what it asks. Checking (hashing) and loading run on `loaderQueue`, never on `queue`, so the
/// control API, `/metrics` and the status page answer while a model hashes or loads; the memory
/// budget is asked, and every outcome recorded, on `queue`.
extension Lifecycle {
    /// Starts loading a version (on the queue). A version already in flight is left to its job.
    func beginLoad(_ job: LoadJob) {
        guard jobs[job.key] == nil, !stopped, !stopping else {
            job.harness = LoadHarness(cause: job.harness.cause, state: .abandoned)
            job.completion?(job)
            return
        }
        jobs[job.key] = job
        feed(job, .start)
    }

    /// Hands `event` to the job's harness and carries out the actions it returns (on the queue).
    func feed(_ job: LoadJob, _ event: LoadHarness.Event) {
        // A result that comes back for a job already ended (a stop) is dropped.
        guard jobs[job.key] === job else { return }
        for action in job.harness.handle(event) {
            switch action {
            case .check: check(job)
            case .askForRoom: feed(job, .room(room(for: job)))
            case .logOverrun:
                log.warning("memory budget exceeded; loading the new version before unloading the old (availability_first)",
                            ["model.name": job.key.model, "model.version": job.key.version, "detail": job.budgetMessage ?? ""])
            case .load: load(job)
            case .finish: finish(job)
            }
        }
    }

    /// Ends every job in flight (the daemon is stopping): waiters are told at once; a load still
    /// running on the loader thread finishes there and its result is dropped.
    func abandonLoads() {
        for job in jobs.values.sorted(by: { $0.key < $1.key }) { feed(job, .stopping) }
    }

    // MARK: The steps

    private func check(_ job: LoadJob) {
        let cause = job.harness.cause
        let record = job.record
        let path = job.path
        switch cause {
        case .admission:
            let observation = job.observation!
            let requireSignature = config.policy(for: job.key.model).requireSignature
            let verifier = self.verifier
            loaderQueue.async { [self] in
                let verdict = verifier.verify(observation, requireSignature: requireSignature)
                // Written to after it looked settled: not complete after all. Tried again later,
                // recording no failure.
                let identity = ModelDirectory.identity(of: observation.path)
                let stillWriting = identity == nil || identity!.size != observation.size || identity!.mtime != observation.mtime
                    || (try? verdict.get().size).map { $0 != observation.size } == true
                queue.async { [self] in
                    if stillWriting { return feed(job, .checked(.stillBeingWritten)) }
                    switch verdict {
                    case .success(let passed):
                        guard jobs[job.key] === job else { return }
                        job.verdict = passed
                        job.checkedIdentity = (observation.size, observation.mtime, observation.inode)
                        recordVerified(job)
                        feed(job, .checked(.passed))
                    case .failure(let failure):
                        job.refusal = failure
                        feed(job, .checked(.refused))
                    }
                }
            }
        case .restore, .reappearance, .rollback:
            let occasion: ArtifactIntegrity.Occasion = cause == .restore ? .startup : cause == .rollback ? .reload : .scan
            loaderQueue.async { [self] in
                // Read before hashing: bytes written after the hash must not pass as checked.
                let identity = ModelDirectory.identity(of: path)
                let digest: Result<VersionDigest, RegistryError>
                do throws(RegistryError) { digest = .success(try VersionDigest.read(artifactPath: path)) } catch { digest = .failure(error) }
                queue.async { [self] in
                    job.checkedIdentity = identity
                    switch digest {
                    case .failure(let error):
                        job.refusal = ArtifactVerifier.Failure(state: .failed, reason: error.message)
                        feed(job, .checked(.refused))
                    case .success(let digest):
                        switch ArtifactIntegrity.judge(model: job.key.model, version: job.key.version, recorded: record.sha256, found: digest.artifact.hex,
                                                       manifest: digest.manifestFinding(record), loaded: false, production: false, occasion: occasion) {
                        case .intact:
                            job.verdict = ArtifactVerifier.Verdict(sha256: digest.artifact.hex, size: digest.artifact.size, manifest: Lifecycle.manifest(of: record),
                                                                   manifestText: record.manifest, signatureStatus: record.signatureStatus,
                                                                   signatureKey: record.signatureKey)
                            job.manifestStamp = digest.manifestStamp
                            feed(job, .checked(.passed))
                        case .quarantine(_, let reason), .serveFromMemory(let reason):
                            job.changedDigest = digest
                            job.refusal = ArtifactVerifier.Failure(state: .quarantined, reason: reason, sha256: digest.artifact.hex, size: digest.artifact.size)
                            feed(job, .checked(.refused))
                        }
                    }
                }
            }
        }
    }

    /// The memory budget's answer for the job (on the queue). Loads in flight count for what
    /// they reserved, so that several loads decided before any of them ends cannot overcommit.
    private func room(for job: LoadJob) -> LoadHarness.Room {
        let verdict = job.verdict!
        if job.harness.cause == .admission,
           let twin = state.loaded.values.first(where: { $0.sha256 == verdict.sha256 && ONNXServable.session(of: $0.servable) != nil }) {
            // Identical bytes already loaded: the same session, under this version's provenance.
            job.twin = twin
            return .fits
        }
        let bytes = MemoryBudget.estimate(size: verdict.size)
        var holdings = state.loaded.map { key, version in
            MemoryBudget.Holding(model: key.model, version: key.version, bytes: version.accountedBytes, isProtected: state.protected(key.model).contains(key.version))
        }
        holdings += jobs.values.filter { $0.reservedBytes > 0 }.map {
            MemoryBudget.Holding(model: $0.key.model, version: $0.key.version, bytes: $0.reservedBytes, isProtected: true)
        }
        switch MemoryBudget.decide(budget: config.memoryBudgetBytes, loaded: holdings, adding: bytes, model: job.key.model, order: config.loadOrder) {
        case .fits:
            job.reservedBytes = bytes
            return .fits
        case .overBudget(let message):
            job.reservedBytes = bytes
            job.budgetMessage = message
            return .overBudget
        case .unload(let versions, let message):
            let model = job.key.model
            do throws(RegistryError) {
                _ = try command("retire") { draft in
                    for version in versions {
                        let key = Key(model: model, version: version)
                        draft.unload(key)
                        draft.transition(key, to: .retired, reason: "unloaded to make room (\(message), budget_first)", action: "retire")
                    }
                }
            } catch {
                // Not unloaded: the new version is refused rather than loaded over the budget.
                log.error("cannot record the unloads that make room", ["model.name": model, "error": error.message])
                job.budgetMessage = "\(message); the unloads could not be recorded: \(error.message)"
                return .refused
            }
            job.reservedBytes = bytes
            return .fits
        case .refuse(let message):
            job.budgetMessage = message
            return .refused
        }
    }

    private func load(_ job: LoadJob) {
        if ModelDirectory.isPipeline(job.path) { return loadPipeline(job) }
        let path = job.path
        let manifest = job.verdict?.manifest
        let twinSession = job.twin.flatMap { ONNXServable.session(of: $0.servable) }
        let provenance = Provenance(model: job.key.model, version: job.key.version, sha256: job.verdict?.sha256 ?? "")
        let checked = job.checkedIdentity
        log.debug("load started", ["model.name": job.key.model, "model.version": job.key.version, "cause": job.harness.cause.rawValue])
        loaderQueue.async { [self] in
            // What is loaded must be what was checked: the file's identity is read again before
            // and after the load (a twin shares a session already loaded and reads no file).
            func unchanged() -> Bool {
                guard twinSession == nil else { return true }
                guard let checked, let now = ModelDirectory.identity(of: path) else { return false }
                return now.size == checked.size && now.mtime == checked.mtime && now.inode == checked.inode
            }
            let started = clock.now()
            let residentBefore = MemoryBudget.residentBytes()
            var result: Result<any Servable, RegistryError>?
            if !unchanged() {
                result = nil
            } else {
                do throws(RegistryError) {
                    let session: Session
                    if let twinSession { session = twinSession } else { session = try loader.load(path: path, manifest: manifest) }
                    result = .success(try ONNXServable.serving(session: session, provenance: provenance, manifest: manifest))
                } catch {
                    result = .failure(error)
                }
                if twinSession == nil && !unchanged() { result = nil }
            }
            let outcome = result
            let seconds = clock.now() - started
            // Measured on the loader queue, the only place sessions load; serving threads may
            // allocate meanwhile, so it is a measurement, not an exact attribution.
            let residentAfter = MemoryBudget.residentBytes()
            let measured: Int64? = twinSession != nil ? 0 : residentBefore.flatMap { before in residentAfter.map { max($0 - before, 0) } }
            queue.async { [self] in
                job.loadSeconds = seconds
                job.measuredBytes = measured
                switch outcome {
                case .success(let servable):
                    job.servable = servable
                    feed(job, .loaded)
                case .failure(let error):
                    job.loadError = error.message
                    feed(job, .loadFailed)
                case nil:
                    job.loadError = "the file changed between its check and its load; the next scan judges it again"
                    log.warning("artifact changed between its check and its load; not loaded", ["model.name": job.key.model, "model.version": job.key.version])
                    feed(job, .changedUnderLoad)
                }
            }
        }
    }

    /// The loaded version a job made.
    func loadedVersion(of job: LoadJob) -> LoadedVersion {
        let verdict = job.verdict!
        let servable = job.servable!
        // A twin shares its session: it adds nothing to the budget.
        let estimate = job.twin == nil ? MemoryBudget.estimate(size: verdict.size) : 0
        return LoadedVersion(model: job.key.model, version: job.key.version, sha256: verdict.sha256, servable: servable, manifest: verdict.manifest,
                             loadedAt: clock.now(), estimatedBytes: estimate, measuredBytes: job.measuredBytes)
    }

    static func manifest(of record: VersionRecord) -> Manifest? {
        record.manifest.flatMap { try? Manifest.parse(file: record.path, data: Data($0.utf8)) }
    }

    // MARK: Outcomes

    private func finish(_ job: LoadJob) {
        jobs[job.key] = nil
        // A pipeline whose models have not arrived waits for them (a rollback's waiter is told
        // at once instead: it cannot wait for versions that may never come).
        if let reason = job.waitingFor, job.harness.cause != .rollback {
            return park(job, reason)
        }
        dispatchOutcome(job)
    }

    /// Records how a job ended, by its cause (on the queue).
    func dispatchOutcome(_ job: LoadJob) {
        switch job.harness.cause {
        case .admission: finishAdmission(job)
        case .restore: finishRestore(job)
        case .reappearance: finishReappearance(job)
        case .rollback: finishRollbackLoad(job)
        }
        job.completion?(job)
    }
}
