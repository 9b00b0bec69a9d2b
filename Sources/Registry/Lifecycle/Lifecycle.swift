import Foundation
import Runtime
import Synchronization

/// The owner of every model version's lifecycle:
/// `discovered -> verifying -> loading -> ready -> (candidate | live | shadow) -> retired`,
/// with `failed`, `quarantined` and `missing`.
///
/// It reconciles the model root (what should exist) with the catalog (what was recorded) and the
/// loaded sessions (what serves), then publishes a new routing table. Every transition is written
/// to the catalog with an event before it takes effect in serving.
///
/// Concurrency: all mutable state below is confined to `queue`, a serial queue: that confinement
/// is why the class is `@unchecked Sendable`. Hashing and loading run on `loaderQueue`, so a long
/// load never blocks control commands; serving never waits on either (it reads the `Router`).
public final class Lifecycle: @unchecked Sendable {
    struct Key: Hashable, Comparable, CustomStringConvertible {
        var model: String
        var version: Int
        static func < (a: Key, b: Key) -> Bool { (a.model, a.version) < (b.model, b.version) }
        var description: String { "\(model) version \(version)" }
    }

    /// The configuration in force; a reload (``apply(_:)``) replaces it between two decisions.
    public var config: DaemonConfig { settings.withLock { $0 } }
    private let settings: Mutex<DaemonConfig>
    public let catalog: Catalog
    public let router: Router
    /// Serving statistics, which rollouts judge; the serving path records into them, and a
    /// timer flushes them to the catalog in batches.
    public let stats: ServingStats
    /// Shadow traffic: the serving path offers mirrored requests, the control API reads reports.
    public let mirror: ShadowMirror
    let log: Log
    let clock: any RegistryClock
    let loader: Loader
    /// Built from the trusted keys in force at each admission, so a reload's keys apply to the
    /// next version admitted.
    var verifier: ArtifactVerifier { ArtifactVerifier(trustedKeys: config.trustedKeys) }
    let directory: ModelDirectory
    let watcher: (any DirectoryWatcher)?

    let queue = DispatchQueue(label: "registryd.lifecycle")
    let loaderQueue = DispatchQueue(label: "registryd.loader")

    // Confined to `queue`.
    var records: [Key: VersionRecord] = [:]
    var loaded: [Key: LoadedVersion] = [:]
    var aliases: [String: [String: Int]] = [:]
    private var inFlight: Set<Key> = []
    /// Paths reported by the watcher as renamed into place, with when.
    private var movedIn: [String: Double] = [:]
    /// Weighted splits in force, by model: version to percent.
    var splits: [String: [Int: Int]] = [:]
    /// Shadows in force, by model.
    var shadows: [String: ShadowSpec] = [:]
    /// Each model's production versions in the order they took over, for `rollback`.
    var productionHistory: [String: [Int]] = [:]
    /// The latest rollout of each model, and the serving counters seen at its last tick.
    var rollouts: [String: RolloutRecord] = [:]
    var rolloutSeen: [String: (canary: WindowStats, baseline: WindowStats)] = [:]
    private var rolloutTimer: DispatchSourceTimer?
    private var statsTimer: DispatchSourceTimer?
    /// Serialises flushes (the timer's and the final one at stop).
    private let flushQueue = DispatchQueue(label: "registryd.stats-flush")
    private var reportedProblems: Set<String> = []
    private var rescanScheduled = false
    private var settleRecheckScheduled = false
    private var timer: DispatchSourceTimer?
    private var stopped = false
    /// Set once `restore` has loaded the catalog into memory; scans wait for it.
    private var restored = false
    /// Inside ``atomically(_:_:)``: publishing waits for the commit.
    private var groupDepth = 0
    private var publishPending = false

    public init(config: DaemonConfig, catalog: Catalog, router: Router, loader: Loader, log: Log,
                clock: any RegistryClock = SystemClock(), watcher: (any DirectoryWatcher)? = InotifyWatcher()) {
        self.settings = Mutex(config)
        self.catalog = catalog
        self.router = router
        self.loader = loader
        self.log = log
        self.clock = clock
        self.watcher = watcher
        self.directory = ModelDirectory(root: config.modelRoot)
        self.mirror = ShadowMirror(capacity: config.shadowQueueSize, cpuShare: Double(config.shadowCPUPercent) / 100,
                                   minimumSpare: Double(config.shadowMinSpareCPUPercent) / 100)
        self.stats = ServingStats(clock: clock)
    }

    /// Puts a reloaded configuration in force (``ConfigReload/applied``: the keys fixed at start
    /// keep their values). Policies, budgets, keys and the settle window apply to the next
    /// decision; nothing already admitted or serving changes.
    public func apply(_ config: DaemonConfig) {
        settings.withLock { $0 = config }
    }

    // MARK: Start and stop

    /// Restores the recorded state (re-hashing every known artifact and reloading what served),
    /// admits what is new in the model root, and starts watching. Returns when every version
    /// that can be loaded now is loaded.
    public func start() throws(RegistryError) {
        var failure: RegistryError?
        queue.sync {
            do throws(RegistryError) {
                // Watching starts before the first scan: a version that arrives while the
                // catalog is restored, or while startup's admissions load (minutes, for large
                // models), is seen by the watcher. (Started after them, such a version waited
                // for the periodic rescan, 30 s by default.) Started here, on the queue, the
                // rescans its events ask for run after this block: never before the restore.
                try watcher?.start(root: config.modelRoot) { [weak self] event in
                    self?.watched(event)
                }
                try restore()
                restored = true
                try scanLocked()
            } catch {
                failure = error
            }
        }
        if let failure {
            watcher?.stop()
            // Rescans the watcher (or a client) already queued must not run on a half-restored
            // catalog.
            queue.sync { stopped = true }
            throw failure
        }
        mirror.start()
        // Let the admissions just started finish, so that the ready line names what serves.
        _ = waitUntilIdle(timeout: 600)
        let timer = DispatchSource.makeTimerSource(queue: queue)
        let interval = config.rescanIntervalSeconds
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [weak self] in self?.rescanNow() }
        timer.resume()
        let rolloutTimer = DispatchSource.makeTimerSource(queue: .global())
        rolloutTimer.schedule(deadline: .now() + 1, repeating: 1)
        rolloutTimer.setEventHandler { [weak self] in self?.rolloutTick() }
        rolloutTimer.resume()
        let statsTimer = DispatchSource.makeTimerSource(queue: flushQueue)
        statsTimer.schedule(deadline: .now() + config.statsFlushSeconds, repeating: config.statsFlushSeconds)
        statsTimer.setEventHandler { [weak self] in self?.flushStatsLocked() }
        statsTimer.resume()
        queue.sync {
            self.timer = timer
            self.rolloutTimer = rolloutTimer
            self.statsTimer = statsTimer
        }
    }

    /// Stops watching and rescanning, then flushes the statistics. Loaded versions keep serving
    /// until the process ends.
    ///
    /// A model load in progress (ONNX Runtime cannot cancel one) is waited for at most
    /// `loadDeadline` seconds: past that, shutdown goes on without it. The version stays
    /// `loading` in the catalog, which the next start admits again from the start; the load's
    /// late result, if the process still runs, is ignored.
    public func stop(loadDeadline: Double = 10) {
        watcher?.stop()
        mirror.stop()
        queue.sync {
            stopped = true
            timer?.cancel()
            timer = nil
            rolloutTimer?.cancel()
            rolloutTimer = nil
            statsTimer?.cancel()
            statsTimer = nil
        }
        let drained = DispatchSemaphore(value: 0)
        loaderQueue.async { drained.signal() }
        if drained.wait(timeout: .now() + max(loadDeadline, 0)) == .timedOut {
            let loading = queue.sync { inFlight.map { "\($0.model)@\($0.version)" }.sorted().joined(separator: ",") }
            log.warning("stopping without waiting for a model load still running; the version is admitted again at the next start",
                        ["waited_seconds": loadDeadline, "in_flight": loading])
        }
        queue.sync {}
        flushStats()
    }

    /// Writes the serving statistics gathered since the last flush to the catalog, in one
    /// transaction. On failure (a full disk) the counts are kept in memory for the next try.
    public func flushStats() {
        flushQueue.sync { flushStatsLocked() }
    }

    private func flushStatsLocked() {
        let rows = stats.takePending()
        let oldest = Int64(((clock.now() - config.statsRetentionHours * 3600) / 60).rounded(.down))
        do throws(RegistryError) {
            try catalog.flushStats(rows, retainAfterMinute: oldest)
        } catch {
            stats.restorePending(rows)
            log.error("serving statistics not flushed; kept in memory for the next try", ["error": error.message, "rows": rows.count])
        }
    }

    /// Waits until no admission is in flight and no settle recheck or rescan is pending
    /// (tests, and `registryctl rescan --wait`).
    public func waitUntilIdle(timeout: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        func idle() -> Bool { queue.sync { inFlight.isEmpty && !rescanScheduled && !settleRecheckScheduled } }
        while Date() < deadline {
            if idle() {
                loaderQueue.sync {}
                if idle() { return true }
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return false
    }

    // MARK: Events from the watcher and the timer

    private func watched(_ event: WatchEvent) {
        queue.async { [self] in
            switch event {
            case .overflow:
                log.warning("inotify queue overflowed; rescanning the model root")
            case .changed(let paths):
                let now = clock.now()
                for path in paths { movedIn[path] = now }
            }
            scheduleRescan(after: 0.02)
        }
    }

    /// Rescans now (from any thread).
    public func rescanNow() {
        queue.async { [self] in
            do throws(RegistryError) { try scanLocked() } catch {
                log.error("rescan failed", ["error": error.message])
            }
        }
    }

    /// Coalesces bursts of watcher events into one scan.
    private func scheduleRescan(after delay: Double) {
        guard !rescanScheduled, !stopped else { return }
        rescanScheduled = true
        queue.asyncAfter(deadline: .now() + delay) { [self] in
            rescanScheduled = false
            do throws(RegistryError) { try scanLocked() } catch {
                log.error("rescan failed", ["error": error.message])
            }
        }
    }

    // MARK: Restore

    /// Loads the catalog into memory, re-hashes every known artifact (catching files changed
    /// while the daemon was down) and reloads the versions that were serving.
    private func restore() throws(RegistryError) {
        for var record in try catalog.versions() {
            // The model root moved (a new mount point, a changed `model_root`): a version lives
            // at its place under the root in force, and is re-hashed there below like any other,
            // so different bytes under its number are quarantined, never served.
            let path = directory.artifactPath(model: record.model, version: record.version)
            if record.path != path {
                log.notice("model root moved; artifact path updated", ["model.name": record.model, "model.version": record.version,
                                                                          "path.before": record.path, "path": path])
                record.path = path
                try catalog.save(record, event: nil)
            }
            records[Key(model: record.model, version: record.version)] = record
        }
        for model in Set(records.keys.map(\.model)) {
            aliases[model] = try catalog.aliases(model: model)
        }
        for (model, spec) in try catalog.routes() {
            guard let route = RouteSpec.parse(spec) else {
                log.error("stored route is unreadable; production serves", ["model.name": model, "spec": spec])
                continue
            }
            splits[model] = route.split
            shadows[model] = route.shadow
        }
        try restoreProductionHistory()
        try restoreRollouts()
        for (key, record) in records.sorted(by: { $0.key < $1.key }) {
            switch record.state {
            case .verifying, .loading, .discovered:
                // Interrupted by a crash: start admission again from scratch.
                records[key] = nil
                continue
            case .failed, .quarantined, .retired, .missing:
                continue
            case .ready, .candidate, .live, .shadow:
                break
            }
            guard let identity = ModelDirectory.identity(of: record.path) else {
                try transition(key, to: .missing, reason: "artifact '\(record.path)' is gone (found at startup)", action: "missing")
                continue
            }
            let digest: (hex: String, size: Int64)
            do throws(RegistryError) { digest = try SHA256.file(at: record.path) } catch {
                try transition(key, to: .failed, reason: error.message, action: "fail")
                continue
            }
            if digest.hex != record.sha256 {
                let reason = "artifact bytes changed while registryd was down: recorded \(record.sha256 ?? "?"), found \(digest.hex)"
                try catalog.quarantine(model: key.model, version: key.version, sha256: digest.hex, size: digest.size, path: record.path, reason: reason)
                try transition(key, to: .quarantined, reason: reason, action: "quarantine")
                log.error("artifact changed while down; version quarantined", ["model.name": key.model, "model.version": key.version, "sha256": digest.hex])
                // The quarantined file's identity, so that the first scan does not quarantine
                // the same bytes again.
                if var updated = records[key] {
                    updated.size = identity.size
                    updated.mtime = identity.mtime
                    try catalog.save(updated, event: nil)
                    records[key] = updated
                }
                continue
            }
            do throws(RegistryError) {
                loaded[key] = try loadChecked(key, record, sha256: digest.hex, size: digest.size)
                var updated = record
                updated.mtime = identity.mtime
                records[key] = updated
                log.info("version restored", ["model.name": key.model, "model.version": key.version, "state": record.state.rawValue])
            } catch {
                try transition(key, to: .failed, reason: error.message, action: "fail")
            }
        }
        publish()
    }

    // MARK: Scan and admission

    private func scanLocked() throws(RegistryError) {
        // Before the restore, every recorded version would look new (a `POST /v1/rescan` can
        // come as soon as the server listens).
        guard !stopped, restored else { return }
        let scan = try directory.scan()
        for problem in scan.problems where !reportedProblems.contains(problem) {
            reportedProblems.insert(problem)
            log.warning("model root entry refused", ["problem": problem])
        }
        let now = clock.now()
        var present: Set<Key> = []
        var earliestSettle: Double?
        for observation in scan.artifacts {
            let key = Key(model: observation.model, version: observation.version)
            present.insert(key)
            if inFlight.contains(key) { continue }
            if let record = records[key] {
                if let wait = try reconcileKnown(key, record, observation, now: now) {
                    earliestSettle = min(earliestSettle ?? wait, wait)
                }
                continue
            }
            if let wait = settleRemaining(observation, now: now) {
                earliestSettle = min(earliestSettle ?? wait, wait)
                continue
            }
            admit(key, observation)
        }
        for (key, record) in records where !present.contains(key) && record.state.isServable {
            let serving = loaded[key] != nil
            try transition(key, to: .missing,
                           reason: "artifact '\(record.path)' disappeared" + (serving ? "; still serving from memory" : ""),
                           action: "missing")
            log.warning("artifact disappeared", ["model.name": key.model, "model.version": key.version, "serving": serving])
        }
        if let earliestSettle, !settleRecheckScheduled {
            settleRecheckScheduled = true
            queue.asyncAfter(deadline: .now() + max(earliestSettle, 0.01)) { [self] in
                settleRecheckScheduled = false
                do throws(RegistryError) { try scanLocked() } catch {
                    log.error("rescan failed", ["error": error.message])
                }
            }
        }
        for (path, at) in movedIn where now - at > 60 { movedIn[path] = nil }
    }

    /// Seconds until the artifact counts as complete, or nil when it is complete now.
    ///
    /// Complete means unmodified for the settle window; or, when it arrived by rename (an atomic
    /// write), unmodified for `renameQuiet`: a short guard, because a rename event is processed a
    /// moment after it happens, and a writer that renames an empty file into place and then
    /// appends to it (as some libraries' "atomic create" does) must not be caught half-way.
    func settleRemaining(_ observation: ArtifactObservation, now: Double) -> Double? {
        let age = now - observation.mtime
        var window = config.settleSeconds
        for path in [observation.path, observation.versionDirectory] where movedIn[path] != nil {
            window = min(window, Lifecycle.renameQuiet)
        }
        return age >= window ? nil : window - age
    }

    /// Loads a version whose file was just hashed and found to be the admitted bytes (`sha256`).
    func loadChecked(_ key: Key, _ record: VersionRecord, sha256: String, size: Int64) throws(RegistryError) -> LoadedVersion {
        let manifest = record.manifest.flatMap { try? Manifest.parse(file: record.path, data: Data($0.utf8)) }
        let session = try loader.load(path: record.path, manifest: manifest)
        let servable = ONNXServable(session: session, provenance: Provenance(model: key.model, version: key.version, sha256: sha256))
        return LoadedVersion(model: key.model, version: key.version, sha256: sha256, servable: servable, manifest: manifest,
                             loadedAt: clock.now(), estimatedBytes: MemoryBudget.estimate(size: size))
    }

    /// How long a file that arrived by rename must stay unmodified.
    static let renameQuiet = 0.25

    /// Compares a known version with its file; returns the seconds to wait when the file changed
    /// but has not settled yet.
    private func reconcileKnown(_ key: Key, _ record: VersionRecord, _ observation: ArtifactObservation, now: Double) throws(RegistryError) -> Double? {
        let sameIdentity = record.size == observation.size && record.mtime == observation.mtime
        let admittedBefore = record.state == .failed && !sameIdentity ? try catalog.wasAdmitted(model: key.model, version: key.version) : false
        switch record.state {
        case .failed where !sameIdentity && !admittedBefore,
             .quarantined where !sameIdentity && record.sha256 == nil:
            // Never admitted (it failed verification or its first load): new bytes get a fresh
            // admission once complete. A version that was once ready, then failed (say its file
            // became unreadable), keeps its recorded bytes: new ones fall through to the
            // immutability check below and are quarantined.
            if let wait = settleRemaining(observation, now: now) { return wait }
            records[key] = nil
            admit(key, observation)
            return nil
        case .failed, .quarantined, .retired:
            if sameIdentity || record.state == .retired { return nil }
        default:
            break
        }
        if sameIdentity && record.state != .missing { return nil }
        if let wait = settleRemaining(observation, now: now) { return wait }
        // The file changed (or came back): is it still the same artifact?
        let digest: (hex: String, size: Int64)
        do throws(RegistryError) { digest = try SHA256.file(at: observation.path) } catch { return nil }
        if digest.hex == record.sha256 {
            var updated = record
            updated.mtime = observation.mtime
            updated.size = observation.size
            var event: EventDraft?
            if record.state == .missing {
                let production = key.version == aliases[key.model]?["production"]
                updated.reason = "artifact reappeared with the same bytes"
                if loaded[key] == nil && production {
                    // Production was missing when the daemon started, so nothing serves the
                    // model: its file is back with the admitted bytes, so it is loaded again
                    // (on the queue, as a rollback's reload is) rather than left retired until
                    // an operator notices the 503s.
                    do throws(RegistryError) {
                        loaded[key] = try loadChecked(key, record, sha256: digest.hex, size: digest.size)
                        updated.reason += "; production loaded again"
                        log.notice("production reappeared and was loaded again", ["model.name": key.model, "model.version": key.version])
                    } catch {
                        // Left missing, with its identity unchanged: the next scan tries again.
                        log.error("production reappeared but could not be loaded; the next scan tries again",
                                  ["model.name": key.model, "model.version": key.version, "error": error.message])
                        return nil
                    }
                }
                let serving = loaded[key] != nil
                updated.state = serving ? (production ? .live : .ready) : .retired
                event = EventDraft(action: "reappear", model: key.model, version: key.version, before: "missing", after: updated.state.rawValue, reason: updated.reason)
            }
            updated.updatedAt = now
            try catalog.save(updated, event: event)
            records[key] = updated
            if event != nil { publish() }
            return nil
        }
        let reason = "version \(key.version) of '\(key.model)' is immutable: new bytes \(digest.hex) differ from the recorded \(record.sha256 ?? "?"); the recorded version keeps serving"
        let alreadyQuarantined = try catalog.quarantineCount(model: key.model, version: key.version) > 0 && record.mtime == observation.mtime
        var updated = record
        updated.mtime = observation.mtime
        updated.size = observation.size
        if !alreadyQuarantined {
            try catalog.quarantine(model: key.model, version: key.version, sha256: digest.hex, size: digest.size, path: observation.path, reason: reason)
            log.error("changed bytes under a known version quarantined", ["model.name": key.model, "model.version": key.version, "sha256": digest.hex])
        }
        let production = aliases[key.model]?["production"] == key.version
        if loaded[key] == nil && record.state != .quarantined {
            // A version that is not in memory can no longer be loaded from its file.
            updated.state = .quarantined
            updated.reason = reason
            updated.updatedAt = now
            try catalog.save(updated, event: EventDraft(action: "quarantine", model: key.model, version: key.version, before: record.state.rawValue, after: "quarantined", reason: reason))
        } else if loaded[key] != nil && !production {
            // As `verify` does: any version but production is unloaded. What is on disk is no
            // longer what was admitted, so it could not be loaded again (a restart, a reload
            // after retention), and a promotion must not make it production; nothing needs it
            // to keep answering. (A split falls back to production, a rollout rolls back, a
            // shadow stops, each saying why.) Production keeps serving the admitted bytes.
            let unloaded = "version \(key.version) of '\(key.model)' is immutable: new bytes \(digest.hex) differ from the recorded \(record.sha256 ?? "?"); unloaded (a version's bytes cannot change: publish new bytes as a new version)"
            loaded[key] = nil
            updated.state = .quarantined
            updated.reason = unloaded
            updated.updatedAt = now
            try catalog.save(updated, event: EventDraft(action: "quarantine", model: key.model, version: key.version, before: record.state.rawValue, after: "quarantined", reason: unloaded))
            log.error("changed bytes under a loaded version that is not production; unloaded", ["model.name": key.model, "model.version": key.version])
            records[key] = updated
            publish()
            return nil
        } else {
            updated.updatedAt = now
            try catalog.save(updated, event: nil)
        }
        records[key] = updated
        return nil
    }

    /// Starts verification of a complete, new artifact on the loader queue.
    private func admit(_ key: Key, _ observation: ArtifactObservation) {
        let now = clock.now()
        let record = VersionRecord(model: key.model, version: key.version, size: observation.size, path: observation.path,
                                   mtime: observation.mtime, state: .verifying, firstSeen: now, updatedAt: now)
        do throws(RegistryError) {
            try catalog.save(record, event: EventDraft(action: "discover", model: key.model, version: key.version, after: "verifying"))
        } catch {
            log.error("cannot record a new version", ["model.name": key.model, "model.version": key.version, "error": error.message])
            return
        }
        records[key] = record
        inFlight.insert(key)
        // Serving learns the version exists: pinned requests get 503 "verifying", not 404.
        publish()
        let policy = config.policy(for: key.model)
        loaderQueue.async { [self] in
            let verdict = verifier.verify(observation, requireSignature: policy.requireSignature)
            // Written to after it looked settled: not complete after all. Try again later,
            // recording no failure.
            let identity = ModelDirectory.identity(of: observation.path)
            let stillWriting = identity == nil || identity!.size != observation.size || identity!.mtime != observation.mtime
                || (try? verdict.get().size).map { $0 != observation.size } == true
            queue.async { [self] in
                guard !stopped else { return }  // shut down meanwhile: the next start admits it
                verified(key, record, observation, verdict, stillWriting: stillWriting)
            }
        }
    }

    /// On `queue`: after hashing. Loads the version on the loader queue if it passed.
    private func verified(_ key: Key, _ record: VersionRecord, _ observation: ArtifactObservation,
                          _ result: Result<ArtifactVerifier.Verdict, ArtifactVerifier.Failure>, stillWriting: Bool) {
        if stillWriting {
            inFlight.remove(key)
            records[key] = nil
            publish()
            try? catalog.setState(model: key.model, version: key.version, .discovered, reason: "still being written",
                                  event: EventDraft(action: "defer", model: key.model, version: key.version, before: "verifying", after: "discovered", reason: "file changed while it was hashed"))
            scheduleRescan(after: 0.05)
            return
        }
        let verdict: ArtifactVerifier.Verdict
        switch result {
        case .failure(let failure):
            finishFailed(key, record, failure)
            return
        case .success(let v):
            verdict = v
        }
        var record = record
        record.sha256 = verdict.sha256
        record.size = verdict.size
        record.manifest = verdict.manifestText
        record.signatureStatus = verdict.signatureStatus
        record.signatureKey = verdict.signatureKey
        record.state = .loading
        record.updatedAt = clock.now()
        do throws(RegistryError) {
            try catalog.save(record, event: EventDraft(action: "verify", model: key.model, version: key.version, before: "verifying",
                                                       after: "loading", reason: "sha256 \(verdict.sha256), signature \(verdict.signatureStatus)"))
        } catch {
            log.error("cannot record verification", ["error": error.message])
        }
        records[key] = record
        publish()
        // Identical bytes already loaded: the same artifact, the same session (under this
        // version's own provenance).
        let twin = loaded.values.first { $0.sha256 == verdict.sha256 && $0.servable is ONNXServable }
        if twin == nil, let refusal = budgetRefusal(adding: MemoryBudget.estimate(size: verdict.size), for: key.model) {
            finishFailed(key, record, ArtifactVerifier.Failure(state: .failed, reason: refusal))
            return
        }
        let loaded = record
        loaderQueue.async { [self] in
            let started = clock.now()
            let residentBefore = MemoryBudget.residentBytes()
            let outcome: Result<Session, RegistryError>
            if let twin = twin?.servable as? ONNXServable {
                outcome = .success(twin.session)
            } else {
                do throws(RegistryError) { outcome = .success(try loader.load(path: observation.path, manifest: verdict.manifest)) } catch { outcome = .failure(error) }
            }
            let seconds = clock.now() - started
            // Measured on the loader queue, the only place sessions load; serving threads may
            // allocate meanwhile, so it is a measurement, not an exact attribution.
            let residentAfter = MemoryBudget.residentBytes()
            let measured: Int64? = twin != nil ? 0 : residentBefore.flatMap { before in residentAfter.map { max($0 - before, 0) } }
            queue.async { [self] in
                guard !stopped else { return }  // shut down meanwhile: the next start admits it
                switch outcome {
                case .failure(let error):
                    finishFailed(key, loaded, ArtifactVerifier.Failure(state: .failed, reason: error.message))
                case .success(let session):
                    finishLoaded(key, loaded, verdict: verdict, session: session, seconds: seconds, measuredBytes: measured, twin: twin)
                }
            }
        }
    }

    private func finishFailed(_ key: Key, _ record: VersionRecord, _ failure: ArtifactVerifier.Failure) {
        inFlight.remove(key)
        var record = record
        let before = record.state
        record.state = failure.state
        record.reason = failure.reason
        record.sha256 = record.sha256 ?? failure.sha256
        record.size = failure.size ?? record.size
        record.updatedAt = clock.now()
        do throws(RegistryError) {
            try catalog.save(record, event: EventDraft(action: failure.state == .quarantined ? "quarantine" : "fail", model: key.model,
                                                       version: key.version, before: before.rawValue, after: failure.state.rawValue, reason: failure.reason))
        } catch {
            log.error("cannot record a failed version", ["error": error.message])
        }
        records[key] = record
        log.error("version not admitted", ["model.name": key.model, "model.version": key.version, "state": failure.state.rawValue, "reason": failure.reason])
    }

    private func finishLoaded(_ key: Key, _ record: VersionRecord, verdict: ArtifactVerifier.Verdict, session: Session, seconds: Double,
                              measuredBytes: Int64?, twin: LoadedVersion?) {
        inFlight.remove(key)
        var record = record
        let estimate = twin == nil ? MemoryBudget.estimate(size: verdict.size) : 0  // a twin shares its session
        let servable = ONNXServable(session: session, provenance: Provenance(model: key.model, version: key.version, sha256: verdict.sha256))
        loaded[key] = LoadedVersion(model: key.model, version: key.version, sha256: verdict.sha256, servable: servable,
                                    manifest: verdict.manifest, loadedAt: clock.now(), estimatedBytes: estimate, measuredBytes: measuredBytes)
        let productionVersion = aliases[key.model]?["production"]
        let hasProduction = productionVersion.map { loaded[Key(model: key.model, version: $0)] != nil } ?? false
        let outcome = AdmissionPolicy.outcome(policy: config.policy(for: key.model), hasServingProduction: hasProduction)
        record.state = .ready
        record.reason = twin.map { "same artifact as '\($0.model)' version \($0.version) (sha256 \(verdict.sha256))" } ?? ""
        record.updatedAt = clock.now()
        do throws(RegistryError) {
            // Ready and what the policy does with it (production, candidate) commit together.
            try atomically("ready") { () throws(RegistryError) in
                try catalog.save(record, event: EventDraft(action: "ready", model: key.model, version: key.version, before: "loading", after: "ready",
                                                           reason: record.reason.isEmpty
                                                            ? String(format: "loaded and warmed up in %.3f s; resident memory +%@ MiB (estimate %@ MiB)", seconds,
                                                                     measuredBytes.map(MemoryBudget.mebibytes) ?? "?", MemoryBudget.mebibytes(estimate))
                                                            : record.reason))
                records[key] = record
                log.notice("version ready", ["model.name": key.model, "model.version": key.version, "sha256": String(verdict.sha256.prefix(12)),
                                             "load.seconds": String(format: "%.3f", seconds)])
                switch outcome {
                case .promote:
                    _ = try promoteLocked(key, actor: EventDraft.daemon, reason: hasProduction ? "policy on_new_version=live" : "first version of the model")
                case .candidate:
                    try setAliasLocked(model: key.model, alias: "candidate", version: key.version, actor: EventDraft.daemon, reason: "policy on_new_version=candidate")
                case .ready:
                    publish()
                }
            }
        } catch {
            log.error("cannot record a loaded version", ["model.name": key.model, "model.version": key.version, "error": error.message])
            publish()
        }
    }

    // MARK: Aliases and promotion

    /// Makes `key` the production version. The previous production stays loaded (per policy).
    func promoteLocked(_ key: Key, actor: String, reason: String, action: String = "promote") throws(RegistryError) -> Int64 {
        guard loaded[key] != nil else {
            throw RegistryError(.unavailable, "model '\(key.model)' version \(key.version) is not loaded")
        }
        let previous = aliases[key.model]?["production"]
        var states: [(version: Int, state: VersionState, reason: String)] = [(key.version, .live, reason)]
        if let previous, previous != key.version, records[Key(model: key.model, version: previous)]?.state == .live {
            states.append((previous, .ready, "replaced by version \(key.version)"))
        }
        let eventID = try catalog.setAlias(model: key.model, alias: "production", version: key.version, states: states,
                                           event: EventDraft(actor: actor, action: action, model: key.model, version: key.version,
                                                             before: previous.map(String.init), after: String(key.version), reason: reason))
        aliases[key.model, default: [:]]["production"] = key.version
        ProductionHistory.record(action: action, version: key.version, in: &productionHistory[key.model, default: []])
        apply(states, model: key.model)
        log.notice("production switched", ["model.name": key.model, "model.version": key.version, "previous": previous.map(String.init) ?? "none", "actor": actor])
        try retire(model: key.model)
        publish()
        return eventID
    }

    @discardableResult
    func setAliasLocked(model: String, alias: String, version: Int, actor: String, reason: String) throws(RegistryError) -> Int64 {
        let previous = aliases[model]?[alias]
        var states: [(version: Int, state: VersionState, reason: String)] = []
        if alias == "candidate" {
            // The `candidate` state marks a loaded version waiting for promotion; production,
            // a shadow or a retired version keeps its own state under the alias.
            if records[Key(model: model, version: version)]?.state == .ready { states.append((version, .candidate, reason)) }
            if let previous, previous != version, records[Key(model: model, version: previous)]?.state == .candidate {
                states.append((previous, .ready, "the candidate alias moved to version \(version)"))
            }
        }
        let eventID = try catalog.setAlias(model: model, alias: alias, version: version, states: states,
                                           event: EventDraft(actor: actor, action: "alias", model: model, version: version,
                                                             before: previous.map { "\(alias)=\($0)" }, after: "\(alias)=\(version)", reason: reason))
        aliases[model, default: [:]][alias] = version
        apply(states, model: model)
        publish()
        return eventID
    }

    /// Unloads the versions the retention policy no longer keeps.
    func retire(model: String) throws(RegistryError) {
        let loadedVersions = Set(loaded.keys.filter { $0.model == model }.map(\.version))
        let modelAliases = aliases[model] ?? [:]
        let drop = RetentionPolicy.versionsToUnload(
            loaded: loadedVersions, production: modelAliases["production"], aliased: protected(model),
            keepPrevious: config.policy(for: model).keepPrevious)
        for version in drop.sorted() {
            let key = Key(model: model, version: version)
            loaded[key] = nil  // serving drops its reference when the new table is published
            let state = records[key]?.state
            if state == .missing || state == .quarantined { continue }
            try transition(key, to: .retired, reason: "unloaded: beyond keep_previous=\(config.policy(for: model).keepPrevious)", action: "retire")
        }
    }

    /// Versions that something points at: an alias, a split arm or the shadow.
    func protected(_ model: String) -> Set<Int> {
        Set((aliases[model] ?? [:]).values).union(splits[model].map { Set($0.keys) } ?? []).union(shadows[model].map { [$0.version] } ?? [])
    }

    func transition(_ key: Key, to state: VersionState, reason: String, action: String) throws(RegistryError) {
        let before = records[key]?.state
        try catalog.setState(model: key.model, version: key.version, state, reason: reason,
                             event: EventDraft(action: action, model: key.model, version: key.version, before: before?.rawValue, after: state.rawValue, reason: reason))
        records[key]?.state = state
        records[key]?.reason = reason
        refreshUpdatedAt(key)
    }

    /// Copies a version's `updated_at` from the catalog row just written (the catalog's clock
    /// stamped it), so that the model listing shows when its state last changed.
    func refreshUpdatedAt(_ key: Key) {
        if let row = try? catalog.version(model: key.model, version: key.version) {
            records[key]?.updatedAt = row.updatedAt
        }
    }

    // MARK: Memory budget

    /// Why loading `bytes` more would break the budget, or nil when it fits (or the load order
    /// says to load anyway, or to unload what nothing points at first, done here).
    private func budgetRefusal(adding bytes: Int64, for model: String) -> String? {
        let holdings = loaded.map { key, version in
            MemoryBudget.Holding(model: key.model, version: key.version, bytes: version.accountedBytes, isProtected: protected(key.model).contains(key.version))
        }
        switch MemoryBudget.decide(budget: config.memoryBudgetBytes, loaded: holdings, adding: bytes, model: model, order: config.loadOrder) {
        case .fits:
            return nil
        case .overBudget(let message):
            log.warning("memory budget exceeded; loading the new version before unloading the old (availability_first)", ["model.name": model, "detail": message])
            return nil
        case .unload(let versions, let message):
            for version in versions {
                let key = Key(model: model, version: version)
                loaded[key] = nil
                try? transition(key, to: .retired, reason: "unloaded to make room (\(message), budget_first)", action: "retire")
            }
            publish()
            return nil
        case .refuse(let message):
            return message
        }
    }

    // MARK: Publishing

    func publish() {
        guard groupDepth == 0 else {
            publishPending = true
            return
        }
        var table = RoutingTable()
        for (key, version) in loaded {
            table.models[key.model, default: RoutingTable.ModelRoutes(production: nil, versions: [:])].versions[key.version] = version
        }
        for (model, modelAliases) in aliases {
            if let production = modelAliases["production"], let version = loaded[Key(model: model, version: production)] {
                table.models[model, default: RoutingTable.ModelRoutes(production: nil, versions: [:])].production = version
            }
        }
        for (key, record) in records {
            table.models[key.model, default: RoutingTable.ModelRoutes(production: nil, versions: [:])].known[key.version] = record.state
        }
        for (model, weights) in splits {
            let arms = TrafficSplit.layout(weights)
            let versions = arms.compactMap { loaded[Key(model: model, version: $0.version)] }
            guard versions.count == arms.count else {
                log.warning("split not applied: a version in it is not loaded; production serves", ["model.name": model])
                continue
            }
            table.models[model]?.arms = zip(arms, versions).map { RoutingTable.Arm(version: $1, upperBucket: $0.upperBucket) }
        }
        for (model, shadow) in shadows {
            // The report exists while the shadow is in force, loaded or not (the listing shows it).
            let tally = mirror.tally(model: model, version: shadow.version, percent: shadow.percent)
            guard let version = loaded[Key(model: model, version: shadow.version)] else {
                log.warning("shadow not applied: its version is not loaded", ["model.name": model, "model.version": shadow.version])
                continue
            }
            table.models[model]?.shadow = RoutingTable.Shadow(version: version, percent: shadow.percent, tally: tally)
        }
        router.publish(table)
        stats.retainOnly(loaded: loaded.keys.map { ($0.model, $0.version) })
    }

    // MARK: Internal API for the control plane

    /// Every model's versions as recorded, with their aliases and whether they are loaded.
    public struct ModelStatus: Sendable {
        public var name: String
        public var versions: [VersionRecord]
        public var aliases: [String: Int]
        public var loadedVersions: Set<Int>
    }

    public func status() -> [ModelStatus] {
        snapshot().models
    }

    /// Promotes `version` of `model` to production.
    public func promote(model: String, version: Int, actor: String, reason: String) throws(RegistryError) {
        try onQueue(atomically: "promote") { () throws(RegistryError) in
            guard records[Key(model: model, version: version)] != nil else {
                throw RegistryError(.notFound, "model '\(model)' version \(version) not found")
            }
            _ = try promoteLocked(Key(model: model, version: version), actor: actor, reason: reason)
        }
    }

    /// Points `alias` of `model` at `version`.
    public func setAlias(model: String, alias: String, version: Int, actor: String, reason: String) throws(RegistryError) {
        try onQueue(atomically: "alias") { () throws(RegistryError) in
            guard records[Key(model: model, version: version)] != nil else {
                throw RegistryError(.notFound, "model '\(model)' version \(version) not found")
            }
            if alias == "production" {
                _ = try promoteLocked(Key(model: model, version: version), actor: actor, reason: reason)
            } else {
                try setAliasLocked(model: model, alias: alias, version: version, actor: actor, reason: reason)
            }
        }
    }

    /// Runs a command on the queue as one catalog transaction (``atomically(_:_:)``).
    func onQueue<T>(atomically command: String, _ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        try onQueue { () throws(RegistryError) -> T in try atomically(command, body) }
    }

    /// Runs a command whose changes span several catalog writes (say a promotion: the rollout
    /// superseded, the split ended, production moved, old versions retired, each with its
    /// event) so that they take effect together or not at all. Its writes share one
    /// transaction; serving sees the new routes only after the commit; if any write or the
    /// commit fails (a full disk), the in-memory state goes back to what it was and the error
    /// is thrown, so memory never runs ahead of the catalog. A crash before the commit leaves
    /// the catalog as before the command. Runs on the queue; `command` names the fault
    /// injection points (``FaultInjection``).
    func atomically<T>(_ command: String, _ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        let saved = (records, loaded, aliases, splits, shadows, productionHistory, rollouts, rolloutSeen)
        let savedReports = groupDepth == 0 ? mirror.saveReports() : nil
        groupDepth += 1
        let result: Result<T, RegistryError>
        do throws(RegistryError) {
            result = .success(try catalog.atomically(body, beforeCommit: { FaultInjection.point("\(command).before-commit") }))
        } catch {
            result = .failure(error)
        }
        groupDepth -= 1
        guard groupDepth == 0 else { return try result.get() }
        if case .failure = result {
            let shadowsNow = shadows
            (records, loaded, aliases, splits, shadows, productionHistory, rollouts, rolloutSeen) = saved
            // The shadows the command changed get their reports back, counts and all (the table
            // still in force, never republished with the command's, carries their tallies).
            let changed = Set(Set(shadowsNow.keys).union(shadows.keys).filter { shadowsNow[$0] != shadows[$0] })
            if let savedReports { mirror.restoreReports(savedReports, models: changed) }
        } else {
            FaultInjection.point("\(command).after-commit")
        }
        if publishPending {
            publishPending = false
            publish()
        }
        return try result.get()
    }

    func onQueue<T>(_ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        let result: Result<T, RegistryError> = queue.sync {
            do throws(RegistryError) { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
