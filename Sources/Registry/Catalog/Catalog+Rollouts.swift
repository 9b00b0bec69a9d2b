import Foundation

/// Rollouts: a plan, its current step and that step's window.
extension Catalog {
    /// Inserts (id 0) or updates a rollout, with an optional event, in one transaction; returns its id.
    @discardableResult
    public func saveRollout(_ r: RolloutRecord, event: EventDraft?) throws(RegistryError) -> Int64 {
        try commit([.saveRollout(r, event: event)], at: clock.now())[0].rowID!
    }

    /// The newest rollout of each model.
    public func latestRollouts() throws(RegistryError) -> [RolloutRecord] {
        try read { db throws(RegistryError) in
            var out: [RolloutRecord] = []
            try db.query(
                "SELECT id, model, version, baseline, plan, step, state, window, started_at, updated_at FROM rollouts r WHERE id = (SELECT max(id) FROM rollouts WHERE model = r.model)"
            ) { row in
                guard let plan = try? JSONDecoder().decode(RolloutPlan.self, from: Data(row.text(4)!.utf8)),
                      let state = RolloutRecord.State(rawValue: row.text(6)!) else { return }
                let window = (try? JSONDecoder().decode(RolloutWindow.self, from: Data(row.text(7)!.utf8)))
                    ?? RolloutWindow(note: "", stepStartedAt: row.double(9)!, canary: WindowStats(), baseline: WindowStats())
                out.append(RolloutRecord(
                    id: row.int(0)!, model: row.text(1)!, version: Int(row.int(2)!), baseline: Int(row.int(3)!), plan: plan,
                    step: Int(row.int(5)!), state: state, note: window.note, stepStartedAt: window.stepStartedAt,
                    canary: window.canary, baselineStats: window.baseline, startedAt: row.double(8)!, updatedAt: row.double(9)!))
            }
            return out
        }
    }
}

/// The `rollouts.window` column: the current step's judgement and statistics.
struct RolloutWindow: Codable {
    var note: String
    var stepStartedAt: Double
    var canary: WindowStats
    var baseline: WindowStats

    enum CodingKeys: String, CodingKey {
        case note, canary, baseline
        case stepStartedAt = "step_started_at"
    }
}
