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
/// wait until the machine next had a free CPU (a priority inversion; measured before the queue
/// was lock-free: 7-10% of throughput at concurrency 8 with every request mirrored).
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

    /// What the mirror has seen for one model's shadow version since it was set.
    public struct Report: Sendable, Equatable {
        public var model: String
        public var version: Int
        public var percent: Int
        /// Requests offered to the mirror; those dropped because the queue was full; those the
        /// shadow failed to answer (an error in the model, or an incompatible answer).
        public var mirrored = 0
        public var dropped = 0
        public var failed = 0
        /// Rows compared, and (for a classifier) rows whose top-1 answer agreed.
        public var comparedRows = 0
        public var agreedRows = 0
        /// How the answers are compared: `top1` (labels, or the argmax of scores) or `max_abs_diff`.
        public var method: String?
        /// The output compared.
        public var output: String?
        /// The largest absolute difference seen between numeric answers.
        public var maxAbsDiff: Double?
        /// Run times of the shadow and of the primary on the same requests (the shadow's is its
        /// CPU time when it runs on the mirror's own thread: see `execute`).
        public var shadowSeconds = 0.0
        public var primarySeconds = 0.0
        public var runs = 0
        public var shadowBuckets = [Int](repeating: 0, count: ServingStats.bounds.count)

        public var agreement: Double? {
            method == "top1" && comparedRows > 0 ? Double(agreedRows) / Double(comparedRows) : nil
        }
    }

    /// A shadow's counters that the serving path updates: atomics, so that a request counts its
    /// mirror (or the mirror's drop) without a lock. One per shadow set; the routing table carries
    /// it with the shadow, and a job whose tally is no longer the report's is ignored.
    public final class Tally: Sendable {
        public let model: String
        public let version: Int
        let mirrored = Atomic<Int>(0)
        let dropped = Atomic<Int>(0)

        init(model: String, version: Int) {
            self.model = model
            self.version = version
        }
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

    /// The reports as they are, for a command that may change a shadow and then be undone.
    public struct SavedReports: Sendable {
        fileprivate let entries: [String: Entry]
    }

    public func saveReports() -> SavedReports {
        state.withLock { SavedReports(entries: $0.entries) }
    }

    /// Puts back `models`' reports as saved (their counts and tallies): an undone command leaves
    /// the shadow in force with its report, not a fresh one.
    public func restoreReports(_ saved: SavedReports, models: Set<String>) {
        state.withLock { state in
            for model in models { state.entries[model] = saved.entries[model] }
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

/// The machine's idle CPU time, from the first line of `/proc/stat` (idle and iowait, all CPUs).
public enum SystemIdleTime {
    @Sendable public static func seconds() -> Double? {
        let fd = open("/proc/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return parse(buffer[0..<count], ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// `cpu  user nice system idle iowait ...`: idle + iowait, in seconds.
    static func parse(_ bytes: ArraySlice<UInt8>, ticksPerSecond: Double) -> Double? {
        let line = bytes.prefix { $0 != UInt8(ascii: "\n") }
        let fields = line.split(separator: UInt8(ascii: " "))
        guard fields.count >= 6, fields[0].elementsEqual("cpu".utf8), ticksPerSecond > 0,
              let idle = UInt64(String(decoding: fields[4], as: UTF8.self)),
              let iowait = UInt64(String(decoding: fields[5], as: UTF8.self)) else { return nil }
        return Double(idle + iowait) / ticksPerSecond
    }
}

/// How a shadow's answer compares with the primary's: a pure function of two tensors.
///
/// Labels (integer, boolean or string outputs) agree row by row when equal. Scores (floating
/// point, rank 2 or more with at least two classes in the last dimension) agree when their
/// argmax is the same; their largest absolute difference is reported too. Other numeric
/// outputs (regressions) report only the largest absolute difference.
public enum ShadowComparison {
    public enum Method: String, Sendable { case top1, maxAbsDiff = "max_abs_diff" }

    public struct Outcome: Sendable, Equatable {
        public var method: Method
        public var rows: Int
        public var agreedRows: Int
        public var maxAbsDiff: Double?
    }

    /// Nil when the two cannot be compared (different types or shapes).
    public static func compare(primary: Tensor, shadow: Tensor) -> Outcome? {
        guard primary.elementType == shadow.elementType, primary.shape == shadow.shape else { return nil }
        let rows = max(primary.shape.first ?? 1, 0)
        let count = primary.shape.reduce(1, *)
        guard rows > 0, count % rows == 0 else { return Outcome(method: .top1, rows: 0, agreedRows: 0, maxAbsDiff: nil) }
        let width = count / rows
        if let a = doubles(primary), let b = doubles(shadow) {
            var diff = 0.0
            for (x, y) in zip(a, b) {
                let d = abs(x - y)
                diff = d.isNaN ? .infinity : max(diff, d)
            }
            guard primary.shape.count >= 2, primary.shape[primary.shape.count - 1] >= 2 else {
                return Outcome(method: .maxAbsDiff, rows: rows, agreedRows: 0, maxAbsDiff: diff)
            }
            var agreed = 0
            for row in 0..<rows where argmax(a, row * width, width) == argmax(b, row * width, width) { agreed += 1 }
            return Outcome(method: .top1, rows: rows, agreedRows: agreed, maxAbsDiff: diff)
        }
        guard let a = labels(primary), let b = labels(shadow) else { return nil }
        var agreed = 0
        for row in 0..<rows where a[(row * width)..<((row + 1) * width)] == b[(row * width)..<((row + 1) * width)] { agreed += 1 }
        return Outcome(method: .top1, rows: rows, agreedRows: agreed, maxAbsDiff: nil)
    }

    private static func argmax(_ values: [Double], _ start: Int, _ width: Int) -> Int {
        var best = start
        for i in start..<(start + width) where values[i] > values[best] { best = i }
        return best - start
    }

    private static func doubles(_ t: Tensor) -> [Double]? {
        switch t.elementType {
        case .float: (try? t.scalars(as: Float.self))?.map(Double.init)
        case .double: try? t.scalars(as: Double.self)
        case .float16: (try? t.scalars(as: Float16.self))?.map(Double.init)
        case .bfloat16: (try? t.scalars(as: BFloat16.self))?.map { Double($0.floatValue) }
        default: nil
        }
    }

    /// Integer, boolean and string elements as comparable byte strings.
    private static func labels(_ t: Tensor) -> [[UInt8]]? {
        if t.elementType == .string { return try? t.byteStrings() }
        guard let bytes = try? t.withUnsafeBytes({ Array($0) }) else { return nil }
        guard let size = t.elementType.byteSize, size > 0, bytes.count % size == 0 else { return nil }
        return stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<($0 + size)]) }
    }
}
