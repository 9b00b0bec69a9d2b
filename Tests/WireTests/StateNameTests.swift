import Foundation
import Testing
import Wire

@Suite("state names")
struct StateNameTests {
    @Test("every known state name round-trips through its JSON string unchanged")
    func knownNamesRoundTrip() throws {
        for name in VersionStateName.known {
            #expect(VersionStateName(rawValue: name.rawValue) == name)
            #expect(APICoding.encode([name]) == Array("[\"\(name.rawValue)\"]".utf8))
        }
        for name in RolloutStateName.known { #expect(try APICoding.decode(RolloutStateName.self, from: APICoding.encode(name)) == name) }
        for name in SignatureStatusName.known { #expect(try APICoding.decode(SignatureStatusName.self, from: APICoding.encode(name)) == name) }
        #expect(RolloutStateName.rolledBack.rawValue == "rolled_back")
        #expect("\(RolloutStateName.rolledBack)" == "rolled_back", "interpolation prints the API's word")
    }

    @Test("a state a newer daemon invents decodes to unrecognized with its text, and encodes back to the same bytes")
    func unknownNamesSurvive() throws {
        let json = Array(#"{"baseline":1,"baseline_window":{"error_rate":0,"errors":0,"requests":0},"canary":{"error_rate":0,"errors":0,"requests":0},"interval_seconds":300,"max_error_rate":0.01,"max_latency_ratio":1.5,"min_requests":200,"model":"digits","note":"","percent":0,"started_at":1,"state":"hibernating","step":1,"step_started_at":1,"steps":[5,100],"version":2}"#.utf8)
        let rollout = try APICoding.decode(RolloutInfo.self, from: json)
        #expect(rollout.state == .unrecognized("hibernating"))
        #expect(!rollout.state.isActive)
        #expect(APICoding.encode(rollout) == json)
        #expect(VersionStateName(rawValue: "warming") == .unrecognized("warming"))
        #expect(VersionStateName(rawValue: "warming").rawValue == "warming")
        #expect(SignatureStatusName(rawValue: "revoked").rawValue == "revoked")
    }

    @Test("a version's JSON is byte for byte what a plain string state gave")
    func versionInfoBytes() throws {
        let info = VersionInfo(version: 2, state: .ready, reason: "", sha256: nil, size: nil, path: "/m/digits/2/model.onnx", loaded: true,
                               aliases: [], signature: .unsigned, signatureKey: nil, firstSeen: 1, updatedAt: 2, traffic: 0)
        let text = String(decoding: APICoding.encode(info), as: UTF8.self)
        #expect(text == #"{"aliases":[],"first_seen":1,"loaded":true,"path":"/m/digits/2/model.onnx","reason":"","signature":"unsigned","state":"ready","traffic":0,"updated_at":2,"version":2}"#)
    }
}
