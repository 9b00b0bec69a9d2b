import Synchronization

/// A bounded multi-producer queue without locks (Dmitry Vyukov's bounded MPMC queue): each slot
/// carries a sequence number that says whose turn it is, producers claim slots with one
/// compare-and-swap, and a full queue refuses at once.
///
/// What it is for: serving threads hand shadow jobs to the idle-scheduled mirror thread. With a
/// lock between them, a serving thread could wait for a lock held by a thread that the kernel
/// runs only when a CPU is free: a priority inversion on the client's path. Here a producer never
/// waits for the consumer. (A producer preempted between claiming a slot and filling it delays
/// only the consumer, which then finds the slot not yet ready.)
///
/// `@unchecked Sendable`: the slots are plain memory shared between threads; each slot's
/// sequence number (an atomic) orders every write of it before every read, and back.
final class BoundedQueue<Element: Sendable>: @unchecked Sendable {
    /// The most elements queued at once (a push past it is refused).
    let capacity: Int
    /// Slots in the ring: `capacity`, but at least 2. With one slot, "readable" (sequence
    /// position + 1) would read as "writable" for the next position, and a second push would
    /// overwrite the first; the logical bound is then kept by `push` itself.
    private let slotCount: Int
    /// Per slot: the position at which it may next be written (== position) or read
    /// (== position + 1). The slots' contents are guarded by these numbers (hence `@unchecked`).
    private let sequences: UnsafeMutablePointer<Atomic<Int>>
    private let slots: UnsafeMutablePointer<Element?>
    private let enqueuePosition = Atomic<Int>(0)
    private let dequeuePosition = Atomic<Int>(0)

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        slotCount = max(capacity, 2)
        sequences = .allocate(capacity: slotCount)
        slots = .allocate(capacity: slotCount)
        for i in 0..<slotCount {
            (sequences + i).initialize(to: Atomic(i))
            (slots + i).initialize(to: nil)
        }
    }

    deinit {
        sequences.deinitialize(count: slotCount)
        sequences.deallocate()
        slots.deinitialize(count: slotCount)
        slots.deallocate()
    }

    /// Appends `element`; false when the queue is full. Never blocks.
    func push(_ element: Element) -> Bool {
        var position = enqueuePosition.load(ordering: .relaxed)
        while true {
            let index = position % slotCount
            let difference = sequences[index].load(ordering: .acquiring) - position
            if difference == 0 {
                // The logical bound (below the ring's size only when capacity is 1). The
                // dequeue position only grows, so a stale read refuses early, never late.
                if position - dequeuePosition.load(ordering: .acquiring) >= capacity { return false }
                let (exchanged, current) = enqueuePosition.compareExchange(expected: position, desired: position + 1,
                                                                           ordering: .sequentiallyConsistent)
                if exchanged { break }
                position = current
            } else if difference < 0 {
                return false  // the slot still holds an element a lap behind: full
            } else {
                position = enqueuePosition.load(ordering: .relaxed)
            }
        }
        let index = position % slotCount
        slots[index] = element
        sequences[index].store(position + 1, ordering: .sequentiallyConsistent)
        return true
    }

    /// Takes the oldest element; nil when there is none ready.
    func pop() -> Element? {
        var position = dequeuePosition.load(ordering: .relaxed)
        while true {
            let index = position % slotCount
            let difference = sequences[index].load(ordering: .acquiring) - (position + 1)
            if difference == 0 {
                let (exchanged, current) = dequeuePosition.compareExchange(expected: position, desired: position + 1,
                                                                           ordering: .sequentiallyConsistent)
                if exchanged { break }
                position = current
            } else if difference < 0 {
                return nil  // empty, or the next slot claimed but not yet filled
            } else {
                position = dequeuePosition.load(ordering: .relaxed)
            }
        }
        let index = position % slotCount
        let element = slots[index].take()
        sequences[index].store(position + slotCount, ordering: .releasing)
        return element
    }

    /// Whether the oldest element is written and can be taken now (a producer that claimed its
    /// slot but has not filled it yet makes this false, where `count` already counts it).
    var hasReady: Bool {
        let position = dequeuePosition.load(ordering: .sequentiallyConsistent)
        return sequences[position % slotCount].load(ordering: .sequentiallyConsistent) == position + 1
    }

    /// Elements queued or being written now (exact when nothing is in flight).
    var count: Int {
        max(0, enqueuePosition.load(ordering: .sequentiallyConsistent) - dequeuePosition.load(ordering: .sequentiallyConsistent))
    }
}
