import Foundation
import Runtime
import Synchronization

/// The owner of every model version's lifecycle:
/// `discovered -> verifying -> loading -> ready -> (candidate | live | shadow) -> retired`,
/// with `failed`, `quarantined` and `missing`.
///
/// It reconciles the model root (what should exist) with the catalog (what was recorded) and the
/// loaded sessions (what serves), then publishes a new routing table. What it has decided is one
/// value (``RegistryState``); every change to it is a command (``CommandDraft``) whose catalog
/// writes commit, with their events, before the new value is swapped in and serving sees it.
///
/// Concurrency: all mutable state below is confined to `queue`, a serial queue: that confinement
/// is why the class is `@unchecked Sendable`. Hashing and loading run on `loaderQueue`, so a long
/// load never blocks control commands; serving never waits on either (it reads the `Router`).
public final class Lifecycle: @unchecked Sendable {
    typealias Key = VersionKey

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
    /// What the registry has decided; only ``command(_:_:)`` replaces it, after the catalog
    /// has committed the change.
    var state = RegistryState()
    /// Versions on their way into memory, each with its harness (``LoadJob``).
    var jobs: [Key: LoadJob] = [:]
    /// Pipelines whose models have nothing serving yet, tried again after every command.
    var parked: [Key: LoadJob] = [:]
    var pipelineRecheckScheduled = false
    /// Known versions whose changed file is being hashed on the loader thread (a rescan).
    var checking: Set<Key> = []
    /// Paths reported by the watcher as renamed into place, with when.
    var movedIn: [String: Double] = [:]
    /// The serving counters of each rollout's two versions seen at its last tick.
    var rolloutSeen: [String: (canary: WindowStats, baseline: WindowStats)] = [:]
    var rolloutTimer: DispatchSourceTimer?
    var statsTimer: DispatchSourceTimer?
    /// Serialises flushes (the timer's and the final one at stop).
    let flushQueue = DispatchQueue(label: "registryd.stats-flush")
    var reportedProblems: Set<String> = []
    var rescanScheduled = false
    var settleRecheckScheduled = false
    var timer: DispatchSourceTimer?
    var stopped = false
    /// Set when a stop begins (``abandonLoadsForStop()``): no new load starts.
    var stopping = false
    /// The loads that a stop abandoned, for its log line.
    var inFlightAtStop: [String] = []
    /// Set once `restore` has loaded the catalog into memory; scans wait for it.
    var restored = false

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
                try scanLocked()
            } catch {
                failure = error
            }
        }
        if let failure {
            watcher?.stop()
            // Rescans the watcher (or a client) already queued must not run on a half-restored
            // catalog.
            queue.sync {
                stopped = true
                abandonLoads()
            }
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

    /// Ends the loads in flight (from any thread): the first step of a stop, so that a command
    /// waiting for a load answers before the server drains. Loads still running on the loader
    /// thread finish there, and ``stop(loadDeadline:)`` waits for them.
    public func abandonLoadsForStop() {
        queue.sync {
            // No load starts from here on (a rollback, a rescan's admission): the server's drain
            // and the loads' deadline must not wait for new ones.
            stopping = true
            inFlightAtStop += jobs.keys.map { "\($0.model)@\($0.version)" }
            abandonLoads()
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
        // Waiters (a rollback loading its target) are told now, if the daemon's stop has not
        // already done it; what runs on the loader thread is waited for below, within the deadline.
        abandonLoadsForStop()
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
            let loading = queue.sync { Set(inFlightAtStop).sorted().joined(separator: ",") }
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

    func flushStatsLocked() {
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
        func idle() -> Bool { queue.sync { jobs.isEmpty && checking.isEmpty && !rescanScheduled && !settleRecheckScheduled } }
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

    func watched(_ event: WatchEvent) {
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
    func scheduleRescan(after delay: Double) {
        guard !rescanScheduled, !stopped else { return }
        rescanScheduled = true
        queue.asyncAfter(deadline: .now() + delay) { [self] in
            rescanScheduled = false
            do throws(RegistryError) { try scanLocked() } catch {
                log.error("rescan failed", ["error": error.message])
            }
        }
    }
}
