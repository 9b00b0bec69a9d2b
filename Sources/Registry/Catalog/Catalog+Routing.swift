/// Aliases and route specs: which versions serve a model, each change with its event.
extension Catalog {
    /// The model's aliases: alias name to version.
    public func aliases(model: String) throws(RegistryError) -> [String: Int] {
        try read { db throws(RegistryError) in
            var out: [String: Int] = [:]
            try db.query("SELECT alias, version FROM aliases WHERE model = ?", [.text(model)]) { row in
                out[row.text(0)!] = Int(row.int(1)!)
            }
            return out
        }
    }

    /// Points `alias` at `version` (or removes it when `version` is nil), optionally changing
    /// version states at the same time, and appends `event`, in one transaction stamped `time`
    /// (or now). Returns the event's id.
    @discardableResult
    public func setAlias(model: String, alias: String, version: Int?, states: [StateChange] = [], at time: Double? = nil,
                         event: EventDraft) throws(RegistryError) -> Int64 {
        try commit([.setAlias(model: model, alias: alias, version: version, states: states, event: event)], at: time ?? clock.now())[0].eventID!
    }

    // MARK: Routes

    /// Every model's route spec (JSON text), by model.
    public func routes() throws(RegistryError) -> [String: String] {
        try read { db throws(RegistryError) in
            var out: [String: String] = [:]
            try db.query("SELECT model, spec FROM routes") { row in out[row.text(0)!] = row.text(1)! }
            return out
        }
    }

    /// Stores (or with nil removes) a model's route spec and appends `event`, in one transaction.
    @discardableResult
    public func setRoute(model: String, spec: String?, states: [StateChange] = [], at time: Double? = nil,
                         event: EventDraft) throws(RegistryError) -> Int64 {
        try commit([.setRoute(model: model, spec: spec, states: states, event: event)], at: time ?? clock.now())[0].eventID!
    }
}
