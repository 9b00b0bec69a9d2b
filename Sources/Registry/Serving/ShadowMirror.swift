import Foundation
import CLinux
import Runtime
import Synchronization

/// Shadow traffic: a share of a model's routed requests is run again on a shadow version, off
/// the client's path, and its answer compared with the one the client got.
///
/// The serving thread only offers a job (one short lock, no allocation beyond the job): the
/// client's answer is already encoded and nothing waits for the mirror. Jobs wait in a bounded
/// queue; when it is full the job is dropped and counted, never queued without bound and never
/// run on the serving thread. One mirror thread, in idle scheduling (SCHED_IDLE) below the
/// serving workers, runs the jobs, and only in the gaps between client requests: the serving
/// path marks each inference it handles (``servingBegan()``/``servingEnded()``), and a job waits
/// until none is in progress, for at most ``maximumDeferral`` seconds. So the shadow takes
/// spare capacity; on a saturated server it runs at a trickle and the queue drops the rest
/// (counted), rather than taking CPU from clients.
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

    private struct State: Sendable {
        var jobs: [Job] = []
        var head = 0
        var reports: [String: Report] = [:]
        var stopped = false
    }

    public let capacity: Int
    /// The longest a job waits for a gap in the serving traffic before it runs anyway.
    public static let maximumDeferral = 0.05
    private let state = Mutex(State())
    /// Inference requests being handled now, and whether the mirror thread waits for none.
    private let serving = Atomic<Int>(0)
    private let waitingForGap = Atomic<Bool>(false)
    private let gap = DispatchSemaphore(value: 0)
    /// Whether the mirror thread sleeps for want of jobs (only then does an offer wake it: the
    /// serving path makes no system call while the mirror is busy).
    private let sleeping = Atomic<Bool>(false)
    /// Until when (uptime, ns) the CPU budget is spent: offers are dropped at once until then.
    private let exhaustedUntil = Atomic<UInt64>(0)
    private let ready = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)

    /// The share of one CPU the mirror's runs may take, over each second (0 < share <= 1). Past
    /// it, jobs are dropped (counted) until the next second: on a busy machine the shadow's
    /// cost to clients stays bounded whatever share of requests is mirrored.
    public let cpuShare: Double

    public init(capacity: Int, cpuShare: Double = 1) {
        precondition(capacity > 0 && cpuShare > 0 && cpuShare <= 1)
        self.capacity = capacity
        self.cpuShare = cpuShare
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
        guard wasRunning, started.load(ordering: .relaxed) else { return }
        ready.signal()
        finished.wait()
    }

    /// Starts a report for `model`'s shadow (a new one each time the shadow is set), or ends it.
    public func configure(model: String, version: Int?, percent: Int) {
        state.withLock { state in
            if let version {
                state.reports[model] = Report(model: model, version: version, percent: percent)
            } else {
                state.reports[model] = nil
            }
        }
    }

    /// Offers a job from the serving path. Never blocks: a full queue, or a spent CPU budget,
    /// drops it and counts it. Wakes the mirror thread (a system call) only when it sleeps.
    public func offer(model: String, _ job: Job) {
        let overBudget = DispatchTime.now().uptimeNanoseconds < exhaustedUntil.load(ordering: .relaxed)
        let accepted = state.withLock { state -> Bool in
            guard !state.stopped, state.reports[model]?.version == job.shadow.version else { return false }
            state.reports[model]?.mirrored += 1
            guard !overBudget, state.jobs.count - state.head < capacity else {
                state.reports[model]?.dropped += 1
                return false
            }
            state.jobs.append(job)
            return true
        }
        if accepted, sleeping.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged {
            ready.signal()
        }
    }

    /// The serving path calls these around each inference request (two atomic operations).
    @inline(__always)
    public func servingBegan() {
        serving.wrappingAdd(1, ordering: .relaxed)
    }

    @inline(__always)
    public func servingEnded() {
        if serving.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0,
           waitingForGap.load(ordering: .acquiring),
           waitingForGap.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged {
            gap.signal()
        }
    }

    /// Waits until no inference request is being handled, or `maximumDeferral` has passed.
    private func waitForGap() {
        let deadline = DispatchTime.now() + ShadowMirror.maximumDeferral
        while serving.load(ordering: .acquiring) > 0 {
            waitingForGap.store(true, ordering: .releasing)
            // Re-checked after announcing the wait: a request that ended in between signalled.
            if serving.load(ordering: .acquiring) == 0 { break }
            if gap.wait(timeout: deadline) == .timedOut { break }
        }
        waitingForGap.store(false, ordering: .releasing)
    }

    /// The reports, by model.
    public func reports() -> [String: Report] {
        state.withLock { $0.reports }
    }

    public var queued: Int {
        state.withLock { $0.jobs.count - $0.head }
    }

    private func next() -> Job? {
        state.withLock { state -> Job? in
            guard !state.stopped, state.head < state.jobs.count else { return nil }
            let job = state.jobs[state.head]
            state.head += 1
            if state.head >= 64 && state.head * 2 >= state.jobs.count {
                state.jobs.removeFirst(state.head)
                state.head = 0
            }
            return job
        }
    }

    private func run() {
        // Run time spent in the current one-second window (the CPU budget).
        var windowStart = DispatchTime.now().uptimeNanoseconds
        var spent: UInt64 = 0
        let allowance = UInt64(cpuShare * 1e9)
        while true {
            if state.withLock({ $0.stopped }) { return }
            guard let job = next() else {
                // Announce the sleep, then look again: an offer in between either sees the
                // announcement (and wakes us) or left a job that this second look finds.
                sleeping.store(true, ordering: .releasing)
                if queued > 0 || state.withLock({ $0.stopped }) {
                    sleeping.store(false, ordering: .releasing)
                    continue
                }
                ready.wait()
                continue
            }
            let now = DispatchTime.now().uptimeNanoseconds
            if now - windowStart >= 1_000_000_000 {
                windowStart = now
                spent = 0
            }
            if spent >= allowance {
                // Spent: the serving path drops offers itself until the window ends.
                exhaustedUntil.store(windowStart + 1_000_000_000, ordering: .relaxed)
                state.withLock { state in
                    guard state.reports[job.shadow.model]?.version == job.shadow.version else { return }
                    state.reports[job.shadow.model]?.dropped += 1
                }
                continue
            }
            waitForGap()
            spent += execute(job)
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
    /// A session that runs on its caller's thread (one intra-op thread) is timed by this thread's
    /// CPU time: the mirror thread is idle-scheduled, so on a busy machine its wall time counts
    /// the waits for a free CPU, which are neither the model's cost nor a cost to clients. A
    /// session on ONNX Runtime's shared pool is timed by the wall clock (its work is on the
    /// pool's threads, which are not idle-scheduled).
    private func execute(_ job: Job) -> UInt64 {
        let model = job.shadow.model
        let onThisThread = job.shadow.session.intraOpThreads == 1
        func clock() -> UInt64 { onThisThread ? ShadowMirror.threadCPUTime() : DispatchTime.now().uptimeNanoseconds }
        let begin = clock()
        let outputs: [String: Tensor]
        do throws(RuntimeError) {
            outputs = try job.shadow.session.run(job.inputs, outputs: job.outputNames)
        } catch {
            state.withLock { state in
                guard state.reports[model]?.version == job.shadow.version else { return }
                state.reports[model]?.failed += 1
            }
            return clock() - begin
        }
        let charged = clock() - begin
        let seconds = Double(charged) / 1e9
        let name = job.primaryOrder.first { job.primary[$0] != nil && outputs[$0] != nil }
        let comparison = name.flatMap { ShadowComparison.compare(primary: job.primary[$0]!, shadow: outputs[$0]!) }
        let bucket = ServingStats.bounds.firstIndex { seconds <= $0 }
        state.withLock { state in
            guard var report = state.reports[model], report.version == job.shadow.version else { return }
            report.runs += 1
            report.shadowSeconds += seconds
            report.primarySeconds += job.primarySeconds
            if let bucket { report.shadowBuckets[bucket] += 1 }
            if let comparison {
                report.output = name
                report.method = comparison.method.rawValue
                report.comparedRows += comparison.rows
                report.agreedRows += comparison.agreedRows
                if let diff = comparison.maxAbsDiff { report.maxAbsDiff = max(report.maxAbsDiff ?? 0, diff) }
            } else {
                report.failed += 1
            }
            state.reports[model] = report
        }
        return charged
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
