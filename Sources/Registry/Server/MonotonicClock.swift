import Glibc

/// Where the HTTP server reads the time for its request and idle timeouts: a seam, so that
/// tests drive ``ConnectionStateMachine`` by hand. Unlike ``RegistryClock`` (seconds since
/// 1970, which the catalog stores and tests move to settle windows and rollouts) this clock only
/// measures intervals, so a wall-clock step (NTP, an operator) never times a connection out early
/// or keeps it alive forever; and the daemon's test clock never reaches the server.
///
/// Thread-safety: implementations are `Sendable` and called from every worker thread and the
/// reaper at once.
public protocol MonotonicClock: Sendable {
    /// Seconds since an arbitrary fixed point; never decreases.
    func now() -> Double
}

/// `CLOCK_MONOTONIC` (clock_gettime(2), answered in user space through the vDSO: no system
/// call per reading).
///
/// Thread-safety: stateless; safe from any thread.
public struct SystemMonotonicClock: MonotonicClock {
    public init() {}

    public func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
