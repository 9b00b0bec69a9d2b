import Testing
@testable import Registry

/// The one rule for bytes under a known version number, as a table: every combination of
/// finding, residency, role and occasion.
@Suite("artifact integrity rule")
struct ArtifactIntegrityTests {
    static let occasions: [ArtifactIntegrity.Occasion] = [.startup, .scan, .verify(actor: "uid=0"), .reload]

    @Test("the admitted bytes are intact, whoever looks and whatever the version does")
    func intact() {
        for occasion in Self.occasions {
            for loaded in [false, true] {
                for production in [false, true] {
                    #expect(ArtifactIntegrity.judge(model: "m", version: 1, recorded: "aa", found: "aa", loaded: loaded, production: production,
                                                    occasion: occasion) == .intact)
                }
            }
        }
    }

    @Test("other bytes under loaded production: it serves on from memory, and the reason says what to do")
    func productionServesOn() {
        for occasion in Self.occasions {
            let verdict = ArtifactIntegrity.judge(model: "m", version: 1, recorded: "aa", found: "bb", loaded: true, production: true, occasion: occasion)
            guard case .serveFromMemory(let reason) = verdict else {
                Issue.record("\(occasion): \(verdict)")
                continue
            }
            #expect(reason.contains("restore the file or promote another version"), "\(reason)")
            #expect(reason.contains("a restart cannot load it"), "\(reason)")
        }
    }

    @Test("other bytes under any other version: quarantined, and unloaded exactly when it was loaded")
    func othersQuarantined() {
        let cases: [(loaded: Bool, production: Bool)] = [(true, false), (false, false), (false, true)]
        for occasion in Self.occasions {
            for (loaded, production) in cases {
                let verdict = ArtifactIntegrity.judge(model: "m", version: 3, recorded: "aa", found: "bb", loaded: loaded, production: production,
                                                      occasion: occasion)
                guard case .quarantine(let unload, let reason) = verdict else {
                    Issue.record("\(occasion) loaded=\(loaded) production=\(production): \(verdict)")
                    continue
                }
                #expect(unload == loaded)
                #expect(reason.contains("bb") && reason.contains("aa"), "the reason names both hashes: \(reason)")
            }
        }
    }

    @Test("a version with no recorded hash never passes as intact")
    func unrecorded() {
        #expect(ArtifactIntegrity.judge(model: "m", version: 1, recorded: nil, found: "aa", loaded: false, production: false, occasion: .scan) != .intact)
    }
}

/// A version's state word, derived from four facts.
@Suite("version status")
struct VersionStatusTests {
    @Test("every state word is the four facts it stands for, and back")
    func table() {
        typealias S = VersionStatus
        let expected: [(VersionState, S.Admission, S.Residency, S.Role, S.File)] = [
            (.discovered, .discovered, .unloaded, .none, .present),
            (.verifying, .verifying, .unloaded, .none, .present),
            (.loading, .verified, .loading, .none, .present),
            (.ready, .verified, .loaded, .none, .present),
            (.candidate, .verified, .loaded, .candidate, .present),
            (.live, .verified, .loaded, .production, .present),
            (.shadow, .verified, .loaded, .shadow, .present),
            (.retired, .verified, .unloaded, .none, .present),
            (.failed, .failed, .unloaded, .none, .present),
            (.quarantined, .quarantined, .unloaded, .none, .present),
            (.missing, .verified, .unloaded, .none, .missing),
        ]
        #expect(expected.count == VersionState.allCases.count)
        for (state, admission, residency, role, file) in expected {
            let status = VersionStatus(state)
            #expect(status == VersionStatus(admission: admission, residency: residency, role: role, file: file), "\(state)")
            #expect(status.state == state)
        }
    }

    @Test("a changed file keeps the word (the admitted bytes serve) but is a fact of its own")
    func changedFile() {
        let status = VersionStatus(.live, file: .changed)
        #expect(status.state == .live)
        #expect(status.file == .changed)
        #expect(status.description.contains("file changed"))
    }

    @Test("refusals win over everything, a missing file over roles")
    func precedence() {
        #expect(VersionStatus(admission: .quarantined, residency: .loaded, role: .production, file: .changed).state == .quarantined)
        #expect(VersionStatus(admission: .failed, residency: .unloaded, role: .none, file: .missing).state == .failed)
        #expect(VersionStatus(admission: .verified, residency: .loaded, role: .production, file: .missing).state == .missing)
    }
}
