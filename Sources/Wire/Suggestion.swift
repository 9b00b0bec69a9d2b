/// "Did you mean" suggestions, shared by registryd (configuration keys, flags) and registryctl
/// (subcommands, options), so both tools suggest the same way.
public enum Suggestion {
    /// The candidate closest to `word` (Levenshtein), if it is within a few edits: at most 2, or
    /// a third of the word's length for longer words.
    public static func closest(to word: String, among candidates: [String]) -> String? {
        let best = candidates.min { editDistance($0, word) < editDistance($1, word) }
        guard let best, editDistance(best, word) <= max(2, word.count / 3) else { return nil }
        return best
    }

    /// Levenshtein distance.
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
