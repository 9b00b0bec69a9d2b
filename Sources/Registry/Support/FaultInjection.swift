import Foundation

/// Named points where the fault-injection tests make the daemon kill itself with SIGKILL, to
/// prove that a crash at exactly that moment loses nothing (RELIABILITY.md).
///
/// Off unless the environment variable `REGISTRYD_FAULT_KILL_AT` names points (comma-separated),
/// read once; when off, a point costs one check of an empty set. The points are
/// `<command>.before-commit` (inside the command's transaction, after all its writes) and
/// `<command>.after-commit` (committed, before the new state is swapped in and serving sees
/// it), for every command run by `Lifecycle.command`, by its name: the tests use `promote`,
/// `rollback`, `rollout-advance`, `rollout-promote` and `rollout-rollback`; the others include
/// `alias`, `split`, `shadow`, `rollout-start`, `rollout-control` and `ready`.
///
/// `REGISTRYD_FAULT_LOAD_DELAY=<seconds>` makes every model load that much slower (a model that
/// loads for longer than the settle window, without a huge file). With
/// `REGISTRYD_FAULT_LOAD_DELAY_WHILE=<path>` as well, only loads that begin while that file
/// exists are slowed, so that a test can let startup load quickly and then slow one later load
/// (a rollback's, a restart's).
public enum FaultInjection {
    static let loadDelaySeconds: Double = getenv("REGISTRYD_FAULT_LOAD_DELAY").flatMap { Double(String(cString: $0)) }.map { max(0, min($0, 600)) } ?? 0
    static let loadDelayWhile: String? = getenv("REGISTRYD_FAULT_LOAD_DELAY_WHILE").map { String(cString: $0) }

    /// On the loader's queue, before a session is created.
    static func delayLoad() {
        guard loadDelaySeconds > 0 else { return }
        if let loadDelayWhile, access(loadDelayWhile, F_OK) != 0 { return }
        usleep(UInt32(loadDelaySeconds * 1e6))
    }

    static let killPoints: Set<String> = {
        guard let raw = getenv("REGISTRYD_FAULT_KILL_AT") else { return [] }
        return Set(String(cString: raw).split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) })
    }()

    /// What is armed (logged at start, so a daemon run this way says so).
    public static var armed: [String] {
        killPoints.sorted() + (loadDelaySeconds > 0 ? ["load delay \(loadDelaySeconds) s" + (loadDelayWhile.map { " while \($0) exists" } ?? "")] : [])
    }

    @inline(__always)
    static func point(_ name: String) {
        guard !killPoints.isEmpty, killPoints.contains(name) else { return }
        kill(getpid(), SIGKILL)
        pause()
    }
}
