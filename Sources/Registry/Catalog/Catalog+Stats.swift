import Foundation

/// Per-minute serving statistics.
extension Catalog {
    /// Adds per-minute serving counters to the stored ones (one transaction for the batch) and
    /// deletes rows older than `retainAfterMinute`.
    public func flushStats(_ rows: [ServingStats.MinuteRow], retainAfterMinute: Int64) throws(RegistryError) {
        try write { db throws(RegistryError) in
            for row in rows {
                var buckets = row.series.buckets
                try db.query("SELECT buckets FROM serving_stats WHERE model = ? AND version = ? AND minute = ?",
                             [.text(row.model), .int(Int64(row.version)), .int(row.minute)]) { stored in
                    let old = Catalog.parseBuckets(stored.text(0) ?? "")
                    for i in buckets.indices where i < old.count { buckets[i] += old[i] }
                }
                try db.run(
                    """
                    INSERT INTO serving_stats(model, version, minute, requests, errors, seconds, buckets) VALUES (?,?,?,?,?,?,?)
                    ON CONFLICT(model, version, minute) DO UPDATE SET requests = requests + excluded.requests,
                        errors = errors + excluded.errors, seconds = seconds + excluded.seconds, buckets = excluded.buckets
                    """,
                    [.text(row.model), .int(Int64(row.version)), .int(row.minute), .int(Int64(row.series.requests)),
                     .int(Int64(row.series.errors)), .double(row.series.seconds), .text("[" + buckets.map(String.init).joined(separator: ",") + "]")])
            }
            try db.run("DELETE FROM serving_stats WHERE minute < ?", [.int(retainAfterMinute)])
        }
    }

    /// Stored per-minute counters of `model` from `sinceMinute` on, oldest first.
    public func stats(model: String, sinceMinute: Int64) throws(RegistryError) -> [ServingStats.MinuteRow] {
        try read { db throws(RegistryError) in
            var out: [ServingStats.MinuteRow] = []
            try db.query("SELECT version, minute, requests, errors, seconds, buckets FROM serving_stats WHERE model = ? AND minute >= ? ORDER BY minute, version",
                         [.text(model), .int(sinceMinute)]) { row in
                var series = ServingStats.Series()
                series.requests = Int(row.int(2) ?? 0)
                series.errors = Int(row.int(3) ?? 0)
                series.seconds = row.double(4) ?? 0
                let buckets = Catalog.parseBuckets(row.text(5) ?? "")
                if buckets.count == series.buckets.count { series.buckets = buckets }
                out.append(ServingStats.MinuteRow(model: model, version: Int(row.int(0) ?? 0), minute: row.int(1) ?? 0, series: series))
            }
            return out
        }
    }

    static func parseBuckets(_ text: String) -> [Int] {
        text.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",").compactMap { Int($0) }
    }
}
