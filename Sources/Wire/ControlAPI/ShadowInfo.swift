/// A shadow and what its mirror has measured since it was set.
public struct ShadowInfo: Codable, Sendable, Equatable {
    public var model: String
    public var version: Int
    public var percent: Int
    /// Requests offered to the mirror; dropped because its queue was full; failed in the shadow.
    public var mirrored: Int
    public var dropped: Int
    public var failed: Int
    /// `top1` (labels or argmax of scores) or `max_abs_diff`; nil before the first comparison.
    public var method: String?
    /// The output compared.
    public var output: String?
    /// Rows compared and rows whose top-1 answers agreed.
    public var comparedRows: Int
    public var agreedRows: Int
    /// agreed / compared, for top-1 comparisons.
    public var agreement: Double?
    /// The largest absolute difference between numeric answers.
    public var maxAbsDiff: Double?
    /// Mean model run time of the shadow and of the serving version on the same requests.
    public var shadowMeanSeconds: Double?
    public var primaryMeanSeconds: Double?
    /// Mirrored requests waiting for the shadow now.
    public var queued: Int

    enum CodingKeys: String, CodingKey {
        case model, version, percent, mirrored, dropped, failed, method, output, agreement, queued
        case comparedRows = "compared_rows", agreedRows = "agreed_rows", maxAbsDiff = "max_abs_diff"
        case shadowMeanSeconds = "shadow_mean_seconds", primaryMeanSeconds = "primary_mean_seconds"
    }

    public init(model: String, version: Int, percent: Int, mirrored: Int, dropped: Int, failed: Int, method: String?, output: String?,
                comparedRows: Int, agreedRows: Int, agreement: Double?, maxAbsDiff: Double?, shadowMeanSeconds: Double?,
                primaryMeanSeconds: Double?, queued: Int) {
        self.model = model
        self.version = version
        self.percent = percent
        self.mirrored = mirrored
        self.dropped = dropped
        self.failed = failed
        self.method = method
        self.output = output
        self.comparedRows = comparedRows
        self.agreedRows = agreedRows
        self.agreement = agreement
        self.maxAbsDiff = maxAbsDiff
        self.shadowMeanSeconds = shadowMeanSeconds
        self.primaryMeanSeconds = primaryMeanSeconds
        self.queued = queued
    }
}
