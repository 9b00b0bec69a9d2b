import CLinux
import Glibc

/// The server's epoll(7) instance: listeners and connections registered one-shot
/// (`EPOLLONESHOT`), so that each readiness goes to exactly one waiting worker and the
/// descriptor stays silent until that worker re-arms it; plus an eventfd that, once written,
/// wakes every worker for good (the stop).
///
/// Each registration carries what it is (a listener or a connection) beside its descriptor, so
/// that a worker knows which table to look in without a lock.
///
/// Thread-safety: thread-safe; epoll_ctl(2) and epoll_wait(2) may be called from any number of
/// threads on one instance (the kernel serialises them), and the class's own fields are two
/// immutable descriptors. It owns both and closes them in `deinit`.
final class Poller: Sendable {
    /// What a worker woke for. A value type.
    enum Event: Equatable {
        case listener(Int32)
        case connection(Int32)
        /// The stop: the worker exits.
        case wake
    }

    private enum Tag: UInt64 {
        case connection = 0, listener = 1, wake = 2
    }

    // epoll event bits (fixed by the Linux ABI).
    private static let readable: UInt32 = 0x001
    private static let writable: UInt32 = 0x004
    private static let peerClosed: UInt32 = 0x2000
    private static let oneShot: UInt32 = 1 << 30

    private let epollFD: Int32
    private let wakeFD: Int32

    init() throws(RegistryError) {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw RegistryError(.system, "epoll_create1: \(Socket.errorText())") }
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        guard wakeFD >= 0 else {
            close(epollFD)
            throw RegistryError(.system, "eventfd: \(Socket.errorText())")
        }
        // Level-triggered and not one-shot: once written, it wakes every worker to exit.
        var event = epoll_event()
        event.events = Poller.readable
        event.data.u64 = Poller.token(wakeFD, .wake)
        epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event)
    }

    deinit {
        close(wakeFD)
        close(epollFD)
    }

    /// Registers a listener, or re-arms it after its event was delivered.
    func armListener(_ descriptor: Int32) {
        arm(descriptor, .listener)
    }

    /// Registers a connection, or re-arms it after its event was delivered: for input, or, when
    /// its transport must write before it can read on (``Transport/needsWritable``), for room
    /// to write.
    func armConnection(_ descriptor: Int32, writable: Bool = false) {
        arm(descriptor, .connection, writable: writable)
    }

    private func arm(_ descriptor: Int32, _ tag: Tag, writable: Bool = false) {
        var event = epoll_event()
        event.events = (writable ? Poller.writable : Poller.readable) | Poller.peerClosed | Poller.oneShot
        event.data.u64 = Poller.token(descriptor, tag)
        // Re-arming is the common case; a descriptor not registered yet is added.
        if epoll_ctl(epollFD, EPOLL_CTL_MOD, descriptor, &event) != 0 {
            epoll_ctl(epollFD, EPOLL_CTL_ADD, descriptor, &event)
        }
    }

    /// Unregisters a descriptor that stays open for now (closing one unregisters it anyway).
    func remove(_ descriptor: Int32) {
        epoll_ctl(epollFD, EPOLL_CTL_DEL, descriptor, nil)
    }

    /// Blocks until an event arrives, and returns it; throws when epoll_wait fails for a
    /// reason other than a signal.
    func wait() throws(RegistryError) -> Event {
        var event = epoll_event()
        while true {
            let count = epoll_wait(epollFD, &event, 1, -1)
            if count < 0 {
                if errno == EINTR { continue }
                throw RegistryError(.system, "epoll_wait: \(Socket.errorText())")
            }
            if count == 0 { continue }
            let descriptor = Int32(bitPattern: UInt32(truncatingIfNeeded: event.data.u64))
            switch Tag(rawValue: event.data.u64 >> 32) {
            case .listener: return .listener(descriptor)
            case .connection: return .connection(descriptor)
            case .wake: return .wake
            case nil: preconditionFailure("an epoll event with a tag the poller never registered")
            }
        }
    }

    /// Wakes every worker, now and in every later wait.
    func wakeAll() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    private static func token(_ descriptor: Int32, _ tag: Tag) -> UInt64 {
        tag.rawValue << 32 | UInt64(UInt32(bitPattern: descriptor))
    }
}
