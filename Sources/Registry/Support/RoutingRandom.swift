import Synchronization

/// The random numbers of the serving path: which arm a keyless request takes, whether a request
/// is mirrored to a shadow.
///
/// The standard library's `SystemRandomNumberGenerator` makes a `getrandom` system call for
/// every number on Linux (kernels before 6.11 have no vDSO for it): a system call per routed
/// request. This is SplitMix64 over one shared atomic counter (one atomic add per number, from
/// any thread), seeded once from the system generator. Routing needs numbers that are uniform
/// and independent of the client, not unpredictable ones: a client that could predict its arm
/// could as well send a routing key, which chooses the arm outright.
public struct RoutingRandom: RandomNumberGenerator, Sendable {
    private static let state: Atomic<UInt64> = {
        var system = SystemRandomNumberGenerator()
        return Atomic(system.next())
    }()

    public init() {}

    public mutating func next() -> UInt64 {
        // SplitMix64 (Steele, Lea and Flood): a Weyl sequence, then a bijective mix.
        var z = RoutingRandom.state.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number uniform in `range`.
    public static func int(in range: Range<Int>) -> Int {
        var generator = RoutingRandom()
        return Int.random(in: range, using: &generator)
    }
}
