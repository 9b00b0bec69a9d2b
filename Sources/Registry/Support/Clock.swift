import Foundation

/// Where the registry reads the time: a seam so that tests drive settle windows, rescans and
/// rollout intervals by hand.
public protocol RegistryClock: Sendable {
    /// Seconds since 1970, as a Double (the catalog stores times this way).
    func now() -> Double
}

/// The wall clock.
public struct SystemClock: RegistryClock {
    public init() {}
    public func now() -> Double { Date().timeIntervalSince1970 }
}
