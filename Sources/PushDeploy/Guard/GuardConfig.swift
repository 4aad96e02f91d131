/// When the guard takes a release back: the largest share of failed answers, counted once enough requests came,
/// and optionally a p99 latency ceiling.
public struct GuardConfig: Sendable, Equatable {
    /// Failed answers (5xx, upstream connection errors and timeouts) above this share trip the guard.
    public var maxErrorRatio: Double = 0.05
    /// Requests to the new release in the window before its share is judged.
    public var minRequests: Int = 20
    /// How far back the figures reach.
    public var window: Duration = .seconds(10)
    /// Answers slower than this at the 99th percentile trip the guard too.
    public var maxP99: Duration?

    public init(maxErrorRatio: Double = 0.05, minRequests: Int = 20, window: Duration = .seconds(10), maxP99: Duration? = nil) {
        self.maxErrorRatio = maxErrorRatio
        self.minRequests = minRequests
        self.window = window
        self.maxP99 = maxP99
    }
}
