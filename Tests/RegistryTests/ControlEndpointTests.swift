import Foundation
import Testing
import Wire
@testable import Registry

/// The control API's contract as one table: the daemon's names and the wire's agree.
@Suite("control endpoints")
struct ControlEndpointTests {
    @Test("every state the daemon stores has a name the wire knows, so registryctl never shows a daemon state as unrecognized")
    func daemonStatesHaveWireNames() {
        for state in VersionState.allCases {
            #expect(VersionStateName.known.contains(VersionStateName(rawValue: state.rawValue)), "\(state)")
        }
        let rollouts: [RolloutRecord.State] = [.running, .paused, .promoted, .rolledBack, .aborted]
        for state in rollouts {
            let name = RolloutStateName(rawValue: state.rawValue)
            #expect(RolloutStateName.known.contains(name) && name.isActive == state.isActive, "\(state)")
        }
    }
}
