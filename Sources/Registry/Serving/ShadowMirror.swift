import Foundation
import CLinux
import Runtime
import Synchronization

/// Shadow traffic: a share of a model's routed requests is run again on a shadow version, off
/// the client's path, and its answer compared with the one the client got.
///
/// The serving path does little and never waits for the mirror. For a request drawn for the
/// shadow it counts the mirror in the shadow's ``Tally`` (atomics) and asks ``admit(_:)``
/// whether the mirror takes a job now; when it is paused, over its budget or full, the drop is
/// counted and no job is built. Otherwise, once the client's answer is written, the job goes
/// into a bounded lock-free queue (``BoundedQueue``); a full queue drops it (counted).
///
/// One mirror thread, in idle scheduling (SCHED_IDLE) below the serving workers, runs the jobs
/// and keeps the reports. The serving path shares no lock with it: an idle-scheduled thread is
/// preempted whenever a worker wants its CPU, and a worker waiting for a lock it held would
/// wait until the machine next had a free CPU: a priority inversion on the client's path, worst
/// exactly when the machine is busiest.
///
/// The mirror runs only on spare capacity:
/// - in the gaps between client requests: the serving path marks each inference it handles
///   (``servingBegan()``/``servingEnded()``), and a job waits until none is in progress, for at
///   most ``maximumDeferral`` seconds;
/// - within ``cpuShare`` of one CPU in each second;
/// - while the machine has at least ``minimumSpare`` of a CPU idle (measured every
///   ``spareWindow`` seconds, adding back the mirror's own runs). Idle scheduling alone does
///   not keep a saturated server's clients whole: the gaps it runs in are the moments between
///   one request and the next, and a worker that wakes must first take its CPU back.
/// On a saturated server the shadow therefore runs little or not at all, and says so in its
/// `dropped` count.
public final class ShadowMirror: Sendable {
    /// One mirrored request.
    public struct Job: Sendable {
        public var shadow: LoadedVersion
        public var inputs: [String: Tensor]
        /// The outputs the client asked for (nil: all).
        public var outputNames: [String]?
        /// The client's answer, and the run time of the version that gave it.
        public var primary: [String: Tensor]
        public var primaryOrder: [String]
        public var primarySeconds: Double
    }

    fileprivate struct Entry: Sendable {
        var report: Report
        var tally: Tally
    }

    private struct Queued: Sendable {
        var job: Job
        var tally: Tally
    }

    private struct State: Sendable {
        var entries: [String: Entry] = [:]
        var stopped = false
    }

    public let capacity: Int
    /// The longest a job waits for a gap in the serving traffic before it runs anyway.
    public static let maximumDeferral = 0.05
    /// How often the machine's spare CPU is measured while the mirror runs (seconds).
    public static let spareWindow = 0.25
    /// The reports; the inference path never takes this lock (the mirror thread, idle-scheduled,
    /// does: see ``offer(_:tally:)``). Readers of the reports (`/metrics`, the model listing)
    /// do, and can wait for the mirror thread if it was preempted holding it: only while the
    /// mirror runs, which is only while the machine has spare CPU, so briefly.
    private let state = Mutex(State())
    private let jobs: BoundedQueue<Queued>
    /// Inference requests being handled now, and whether the mirror thread waits for none.
    private let serving = Atomic<Int>(0)
    private let waitingForGap = Atomic<Bool>(false)
    private let gap = DispatchSemaphore(value: 0)
    /// Whether the mirror thread sleeps for want of jobs (only then does an offer wake it: the
    /// serving path makes no system call while the mirror is busy).
    private let sleeping = Atomic<Bool>(false)
    /// Until when (uptime, ns) offers are dropped at once, without building a job: the CPU
    /// budget is spent, or the machine has too little spare CPU. And whether the mirror is stopped.
    private let closedUntil = Atomic<UInt64>(0)
    private let stoppedFlag = Atomic<Bool>(false)
    private let ready = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)

    /// The share of one CPU the mirror's runs may take, over each second (0 < share <= 1). Past
    /// it, jobs are dropped (counted) until the next second: on a busy machine the shadow's
    /// cost to clients stays bounded whatever share of requests is mirrored.
    public let cpuShare: Double
    /// The spare CPU (a share of one CPU: the machine's idle time plus the mirror's own runs,
    /// over the last ``spareWindow``) below which the mirror pauses, dropping offers (counted)
    /// until the next measure. 0 turns the check off. Idle scheduling alone does not keep a
    /// saturated server's clients whole: the gaps it runs in are the moments between one
    /// request and the next, and a worker that wakes must first take its CPU back.
    public let minimumSpare: Double
    private let idleTime: @Sendable () -> Double?

    /// `idleTime` gives the machine's idle CPU time so far in seconds (all CPUs together); by
    /// default from `/proc/stat`.
    public init(capacity: Int, cpuShare: Double = 1, minimumSpare: Double = 0,
                idleTime: @escaping @Sendable () -> Double? = SystemIdleTime.seconds) {
        precondition(capacity > 0 && cpuShare > 0 && cpuShare <= 1 && minimumSpare >= 0)
        self.capacity = capacity
        self.jobs = BoundedQueue(capacity: capacity)
        self.cpuShare = cpuShare
        self.minimumSpare = minimumSpare
        self.idleTime = idleTime
    }

    /// Starts the mirror thread (once).
    public func start() {
        guard started.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        let thread = Thread { [self] in
            // Below the serving workers: a busy shadow must not take the CPU from clients. Idle
            // scheduling (runs only on a CPU nobody else wants, preempted at once); nice 10
            // where that is refused.
            if registryd_idle_this_thread() != 0 { _ = registryd_nice_this_thread(10) }
            run()
            finished.signal()
        }
        thread.name = "registryd-shadow"
        thread.start()
    }

    /// Stops the thread after the job it is running; queued jobs are discarded.
    public func stop() {
        let wasRunning = state.withLock { state -> Bool in
            let was = !state.stopped
            state.stopped = true
            return was
        }
        stoppedFlag.store(true, ordering: .sequentiallyConsistent)
        if wasRunning, started.load(ordering: .relaxed) {
            ready.signal()
            finished.wait()
        }
        while jobs.pop() != nil {}
    }

    /// Starts a report for `model`'s shadow (a new one each time the shadow is set), or ends it.
    public func configure(model: String, version: Int?, percent: Int) {
        state.withLock { state in
            if let version {
                state.entries[model] = Entry(report: Report(model: model, version: version, percent: percent),
                                             tally: Tally(model: model, version: version))
            } else {
                state.entries[model] = nil
            }
        }
    }

    /// The tally of `model`'s shadow on `version`, starting its report if there is none (the
    /// routing table carries it).
    public func tally(model: String, version: Int, percent: Int) -> Tally {
        state.withLock { state in
            if let entry = state.entries[model], entry.report.version == version { return entry.tally }
            let entry = Entry(report: Report(model: model, version: version, percent: percent), tally: Tally(model: model, version: version))
            state.entries[model] = entry
            return entry.tally
        }
    }

    /// From the serving path, for each request drawn for the shadow: counts it, and says whether
    /// the mirror takes a job now. Atomics only: when the mirror is paused, over its budget or
    /// full, the request is counted as dropped and no job is built. A job admitted is then
    /// queued with ``offer(_:tally:)``.
    @inline(__always)
    public func admit(_ tally: Tally) -> Bool {
        // A stopped mirror (the daemon is shutting down) counts nothing.
        guard !stoppedFlag.load(ordering: .relaxed) else { return false }
        tally.mirrored.wrappingAdd(1, ordering: .relaxed)
        if DispatchTime.now().uptimeNanoseconds < closedUntil.load(ordering: .relaxed) || jobs.count >= capacity {
            tally.dropped.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        return true
    }

    /// Queues a job that ``admit(_:)`` let through. Never blocks and takes no lock: the queue
    /// is lock-free, so a serving thread never waits for the mirror thread, which the kernel runs
    /// only when a CPU is free (waiting for a lock it held would be a priority inversion on the
    /// client's path). A full queue drops the job (counted). Wakes the mirror thread (a system
    /// call) only when it sleeps.
    public func offer(_ job: Job, tally: Tally) {
        guard !stoppedFlag.load(ordering: .relaxed), jobs.push(Queued(job: job, tally: tally)) else {
            tally.dropped.wrappingAdd(1, ordering: .relaxed)
            return
        }
        if sleeping.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged {
            ready.signal()
        }
    }

    /// ``admit(_:)`` and ``offer(_:tally:)`` together.
    public func submit(_ job: Job, tally: Tally) {
        if admit(tally) { offer(job, tally: tally) }
    }

    /// The serving path calls these around each inference request (two atomic operations).
    @inline(__always)
    public func servingBegan() {
        serving.wrappingAdd(1, ordering: .relaxed)
    }

    @inline(__always)
    public func servingEnded() {
        // Sequentially consistent on both sides (a Dekker pattern with `waitForGap`): either this
        // load sees the mirror's announcement, or the mirror's load sees this decrement.
        if serving.wrappingSubtract(1, ordering: .sequentiallyConsistent).newValue == 0,
           waitingForGap.load(ordering: .sequentiallyConsistent),
           waitingForGap.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged {
            gap.signal()
        }
    }

    /// Waits until no inference request is being handled, or `maximumDeferral` has passed.
    private func waitForGap() {
        let deadline = DispatchTime.now() + ShadowMirror.maximumDeferral
        while serving.load(ordering: .acquiring) > 0 {
            waitingForGap.store(true, ordering: .sequentiallyConsistent)
            // Re-checked after announcing the wait: a request that ended in between signalled.
            if serving.load(ordering: .sequentiallyConsistent) == 0 { break }
            if gap.wait(timeout: deadline) == .timedOut { break }
        }
        waitingForGap.store(false, ordering: .releasing)
    }

    /// The reports, by model.
    public func reports() -> [String: Report] {
        state.withLock { state in
            state.entries.mapValues { entry in
                var report = entry.report
                report.mirrored = entry.tally.mirrored.load(ordering: .relaxed)
                report.dropped = entry.tally.dropped.load(ordering: .relaxed)
                return report
            }
        }
    }

    public var queued: Int { jobs.count }

    /// Whether `tally` is still its model's current shadow (else its jobs are ignored: the shadow
    /// changed since they were offered).
    private func isCurrent(_ tally: Tally) -> Bool {
        state.withLock { $0.entries[tally.model]?.tally === tally }
    }

    /// Drops offers until `deadline` (uptime, ns), or later if already so. Only the mirror
    /// thread writes `closedUntil`, so a load and a store suffice.
    private func close(until deadline: UInt64) {
        closedUntil.store(max(closedUntil.load(ordering: .relaxed), deadline), ordering: .relaxed)
    }

    /// Drops a job the mirror took but will not run (counted against its shadow).
    private func discard(_ queued: Queued) {
        queued.tally.dropped.wrappingAdd(1, ordering: .relaxed)
    }

    private func run() {
        // Run time spent in the current one-second window (the CPU budget).
        var windowStart = DispatchTime.now().uptimeNanoseconds
        var spent: UInt64 = 0
        let allowance = UInt64(cpuShare * 1e9)
        // The spare CPU measure: when it was last taken, the idle time then, and the mirror's run
        // time since.
        var measuredAt = windowStart
        var idleThen = minimumSpare > 0 ? idleTime() : nil
        var ranSince: UInt64 = 0
        while true {
            if stoppedFlag.load(ordering: .sequentiallyConsistent) { return }
            guard let item = jobs.pop() else {
                // Announce the sleep, then look again: an offer in between either sees the
                // announcement (and wakes us) or left a job that this second look finds. (A
                // producer fills its slot before it looks at `sleeping`: a job claimed but not
                // yet written is not waited for here, its producer wakes us.)
                sleeping.store(true, ordering: .sequentiallyConsistent)
                if jobs.hasReady || stoppedFlag.load(ordering: .sequentiallyConsistent) {
                    sleeping.store(false, ordering: .sequentiallyConsistent)
                    continue
                }
                _ = ready.wait(timeout: .now() + 1)
                continue
            }
            guard isCurrent(item.tally) else { continue }
            let now = DispatchTime.now().uptimeNanoseconds
            if minimumSpare > 0, now - measuredAt >= UInt64(ShadowMirror.spareWindow * 1e9) {
                let idleNow = idleTime()
                let elapsed = Double(now - measuredAt) / 1e9
                let spare = idleNow.flatMap { current in idleThen.map { (current - $0 + Double(ranSince) / 1e9) / elapsed } }
                (measuredAt, idleThen, ranSince) = (now, idleNow, 0)
                if let spare, spare < minimumSpare {
                    // Too busy: offers are dropped on the serving path until the next measure,
                    // which then covers a window without the mirror.
                    close(until: now + UInt64(ShadowMirror.spareWindow * 1e9))
                }
            }
            if now < closedUntil.load(ordering: .relaxed) {
                // Paused (or over budget): jobs queued before the pause are dropped too.
                discard(item)
                continue
            }
            if now - windowStart >= 1_000_000_000 {
                windowStart = now
                spent = 0
            }
            if spent >= allowance {
                // Spent: the serving path drops offers itself until the window ends.
                close(until: windowStart + 1_000_000_000)
                discard(item)
                continue
            }
            waitForGap()
            let charged = execute(item)
            spent += charged
            ranSince += charged
        }
    }

    /// This thread's CPU time, in nanoseconds.
    private static func threadCPUTime() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Runs one job and records it; returns the run time charged to the CPU budget (ns).
    ///
    /// A servable that runs on its caller's thread (one intra-op thread) is timed by this thread's
    /// CPU time: the mirror thread is idle-scheduled, so on a busy machine its wall time counts
    /// the waits for a free CPU, which are neither the model's cost nor a cost to clients. A
    /// session on ONNX Runtime's shared pool is timed by the wall clock (its work is on the
    /// pool's threads, which are not idle-scheduled).
    private func execute(_ queued: Queued) -> UInt64 {
        let job = queued.job
        let model = job.shadow.model
        let onThisThread = job.shadow.servable.runsOnCallingThread
        func clock() -> UInt64 { onThisThread ? ShadowMirror.threadCPUTime() : DispatchTime.now().uptimeNanoseconds }
        let begin = clock()
        let outputs: [String: Tensor]
        do throws(RegistryError) {
            outputs = try job.shadow.servable.predict(job.inputs, outputs: job.outputNames).outputs
        } catch {
            state.withLock { state in
                guard state.entries[model]?.tally === queued.tally else { return }
                state.entries[model]?.report.failed += 1
            }
            return clock() - begin
        }
        let charged = clock() - begin
        let seconds = Double(charged) / 1e9
        let name = job.primaryOrder.first { job.primary[$0] != nil && outputs[$0] != nil }
        let comparison = name.flatMap { ShadowComparison.compare(primary: job.primary[$0]!, shadow: outputs[$0]!) }
        let bucket = ServingStats.bounds.firstIndex { seconds <= $0 }
        state.withLock { state in
            guard var entry = state.entries[model], entry.tally === queued.tally else { return }
            entry.report.runs += 1
            entry.report.shadowSeconds += seconds
            entry.report.primarySeconds += job.primarySeconds
            if let bucket { entry.report.shadowBuckets[bucket] += 1 }
            if let comparison {
                entry.report.output = name
                entry.report.method = comparison.method.rawValue
                entry.report.comparedRows += comparison.rows
                entry.report.agreedRows += comparison.agreedRows
                if let diff = comparison.maxAbsDiff { entry.report.maxAbsDiff = max(entry.report.maxAbsDiff ?? 0, diff) }
            } else {
                entry.report.failed += 1
            }
            state.entries[model] = entry
        }
        return charged
    }
}
