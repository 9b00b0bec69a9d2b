import Testing
@testable import Registry

/// The load harness as a table: every state with every event, for every cause, gives exactly
/// the listed state and actions; anything not listed changes nothing and asks for nothing (a
/// late result after a stop, say).
@Suite("load harness")
struct LoadHarnessTests {
    typealias H = LoadHarness

    static let events: [H.Event] = [.start] + H.Check.allCases.map { .checked($0) } + H.Room.allCases.map { .room($0) }
        + [.loaded, .loadFailed, .changedUnderLoad, .stopping]

    /// The transitions that do something: (from, event) -> (to, actions).
    static let table: [(H.State, H.Event, H.State, [H.Action])] = [
        (.new, .start, .checking, [.check]),
        (.checking, .checked(.passed), .awaitingRoom, [.askForRoom]),
        (.checking, .checked(.stillBeingWritten), .deferred, [.finish]),
        (.checking, .checked(.refused), .failed, [.finish]),
        (.awaitingRoom, .room(.fits), .loading, [.load]),
        (.awaitingRoom, .room(.overBudget), .loading, [.logOverrun, .load]),
        (.awaitingRoom, .room(.refused), .refused, [.finish]),
        (.loading, .loaded, .ready, [.finish]),
        (.loading, .loadFailed, .failed, [.finish]),
        (.loading, .changedUnderLoad, .deferred, [.finish]),
        (.new, .stopping, .abandoned, [.finish]),
        (.checking, .stopping, .abandoned, [.finish]),
        (.awaitingRoom, .stopping, .abandoned, [.finish]),
        (.loading, .stopping, .abandoned, [.finish]),
    ]

    @Test("every state with every event gives the listed state and actions, for every cause")
    func everyStateEveryEvent() {
        #expect(H.State.allCases.count == 9 && Self.events.count == 11)
        for cause in H.Cause.allCases {
            for state in H.State.allCases {
                for event in Self.events {
                    var harness = H(cause: cause, state: state)
                    let actions = harness.handle(event)
                    let row = Self.table.first { $0.0 == state && $0.1 == event }
                    #expect(harness.state == (row?.2 ?? state), "\(cause) \(state) + \(event)")
                    #expect(actions == (row?.3 ?? []), "\(cause) \(state) + \(event)")
                }
            }
        }
    }

    @Test("a terminal state is never left, and every path from new ends in one, with finish asked exactly once")
    func terminalAndFinishOnce() {
        for state in H.State.allCases where state.isTerminal {
            for event in Self.events {
                var harness = H(cause: .admission, state: state)
                #expect(harness.handle(event).isEmpty)
                #expect(harness.state == state)
            }
        }
        // Every sequence of up to four events from `new`: finish at most once, and only on entering a terminal state.
        func walk(_ harness: H, depth: Int, finishes: Int) {
            for event in Self.events {
                var next = harness
                let actions = next.handle(event)
                let count = finishes + actions.filter { $0 == .finish }.count
                #expect(count <= 1, "\(harness.state) + \(event)")
                if actions.contains(.finish) { #expect(next.state.isTerminal) }
                if depth > 0 { walk(next, depth: depth - 1, finishes: count) }
            }
        }
        walk(H(cause: .rollback), depth: 4, finishes: 0)
    }

    @Test("the happy path: check, room, load, finish; with availability_first over the budget, the overrun is logged before the load")
    func happyPath() {
        var harness = H(cause: .restore)
        #expect(harness.handle(.start) == [.check])
        #expect(harness.handle(.checked(.passed)) == [.askForRoom])
        #expect(harness.handle(.room(.overBudget)) == [.logOverrun, .load])
        #expect(harness.handle(.loaded) == [.finish])
        #expect(harness.state == .ready)
    }
}
