import CLinux
import Dispatch
import Glibc
import Synchronization

/// Busy polling (`busy_poll_us`): after answering, a worker may keep the connection and poll it
/// for the client's next request for a few microseconds before handing it back to the poller.
/// A client that sends its next request at once (a closed loop, a batch job) then finds the
/// worker awake: the worker does not sleep in `epoll_wait`, the client's write wakes no thread,
/// and the connection is not re-armed. On virtual CPUs, where a sleep and a cross-CPU wake-up
/// cost tens of microseconds, that wake-up is a large share of a small model's cost per request
/// (BENCHMARKS.md has the figures).
///
/// The rules, so that polling never takes a CPU that serving needs:
/// - a worker polls only while no other worker is handling anything, so at most one polls; under
///   load the next event is already waiting, and polling would take a CPU from the workers
///   serving it;
/// - it yields its CPU every few turns to any thread waiting for it, and polls for at most the
///   budget;
/// - which connections may be polled, at most 16 polled answers in a row, and the 15 chances a
///   connection skips after a poll that ran out are ``ConnectionStateMachine``'s decisions.
///
/// Thread-safety: thread-safe; its state is atomics (the count of active workers and the
/// tallies). ``poll(_:buffer:)`` is called by the worker that owns the connection.
final class BusyPoller: Sendable {
    /// How long one poll may last, in nanoseconds; 0 turns polling off.
    let budgetNanoseconds: UInt64
    /// Workers handling an event (not waiting in `epoll_wait`), maintained by the workers.
    let activeWorkers = Atomic<Int>(0)
    /// Polls that found the client's next request, and those that ran out.
    let hits = Atomic<Int>(0)
    let misses = Atomic<Int>(0)

    /// Turns between yields of the CPU: often enough that a waiting thread (the client itself
    /// when it shares the machine) runs within a few microseconds, rarely enough that the
    /// yields' own cost stays out of the answer's latency.
    private static let turnsPerYield = 8

    init(budgetMicroseconds: Int) {
        budgetNanoseconds = UInt64(max(0, budgetMicroseconds)) * 1000
    }

    /// Polls `connection` (owned by the calling worker) for its next request. Returns the state
    /// machine's next action when input or its end arrived (read into `buffer` and reported),
    /// nil when the worker should park the connection: polling is off, another worker is busy,
    /// or the budget ran out (reported to the machine, which then skips its next chances).
    func poll(_ connection: Connection, buffer: UnsafeMutableRawBufferPointer) -> ConnectionStateMachine.Action? {
        guard budgetNanoseconds > 0, activeWorkers.load(ordering: .relaxed) <= 1 else { return nil }
        // The budget is a spin length, not a timeout: it reads the real monotonic clock (a
        // hand-driven one would spin forever), and nothing else depends on it.
        let deadline = DispatchTime.now().uptimeNanoseconds + budgetNanoseconds
        var turns = 0
        while true {
            switch connection.transport.read(into: buffer) {
            case .transferred(let count):
                hits.add(1, ordering: .relaxed)
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                return connection.machine.polled(.bytes(bytes, filledBuffer: count == buffer.count))
            case .closed:
                return connection.machine.polled(.end)
            case .wouldBlock:
                break
            }
            // Another worker took an event: there is work, and this CPU may be needed for it.
            // Not the client's doing, so not a miss.
            if activeWorkers.load(ordering: .relaxed) > 1 { return nil }
            if DispatchTime.now().uptimeNanoseconds >= deadline { break }
            // With nothing waiting for this CPU, sched_yield returns at once.
            turns += 1
            if turns % BusyPoller.turnsPerYield == 0 { sched_yield() }
        }
        connection.machine.pollRanOut()
        misses.add(1, ordering: .relaxed)
        return nil
    }
}
