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
final class BoundedQueue<Element: Sendable>: @unchecked Sendable {
    let capacity: Int
    /// Per slot: the position at which it may next be written (== position) or read
    /// (== position + 1). The slots' contents are guarded by these numbers (hence `@unchecked`).
    private let sequences: UnsafeMutablePointer<Atomic<Int>>
    private let slots: UnsafeMutablePointer<Element?>
    private let enqueuePosition = Atomic<Int>(0)
    private let dequeuePosition = Atomic<Int>(0)

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        sequences = .allocate(capacity: capacity)
        slots = .allocate(capacity: capacity)
        for i in 0..<capacity {
            (sequences + i).initialize(to: Atomic(i))
            (slots + i).initialize(to: nil)
        }
    }

    deinit {
        (sequences).deinitialize(count: capacity)
        sequences.deallocate()
        slots.deinitialize(count: capacity)
        slots.deallocate()
    }

    /// Appends `element`; false when the queue is full. Never blocks.
    func push(_ element: Element) -> Bool {
        var position = enqueuePosition.load(ordering: .relaxed)
        while true {
            let index = position % capacity
            let difference = sequences[index].load(ordering: .acquiring) - position
            if difference == 0 {
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
        let index = position % capacity
        slots[index] = element
        sequences[index].store(position + 1, ordering: .sequentiallyConsistent)
        return true
    }

    /// Takes the oldest element; nil when there is none ready.
    func pop() -> Element? {
        var position = dequeuePosition.load(ordering: .relaxed)
        while true {
            let index = position % capacity
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
        let index = position % capacity
        let element = slots[index].take()
        sequences[index].store(position + capacity, ordering: .releasing)
        return element
    }

    /// Elements queued or being written now (exact when nothing is in flight).
    var count: Int {
        max(0, enqueuePosition.load(ordering: .sequentiallyConsistent) - dequeuePosition.load(ordering: .sequentiallyConsistent))
    }
}
