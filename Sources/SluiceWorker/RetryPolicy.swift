import Sluice

/// When a failed attempt runs again: exponential backoff with full jitter, or the provider's
/// Retry-After when it sent one. The worker's retry loop is the only retry layer in Sluice.
public struct RetryPolicy: Sendable {
    public var base: Duration
    public var cap: Duration
    public var maxRetryAfter: Duration

    public init(base: Duration, cap: Duration, maxRetryAfter: Duration) {
        self.base = base
        self.cap = cap
        self.maxRetryAfter = maxRetryAfter
    }

    /// The delay before attempt `attempt + 1`, given the failure of attempt `attempt` (1-based).
    /// - Parameter random: a uniform value in [0, 1) (injectable for tests).
    public func delay(afterAttempt attempt: Int, retryAfter: Duration?, random: Double = Double.random(in: 0..<1)) -> Duration {
        if let retryAfter, retryAfter > .zero {
            return min(retryAfter, maxRetryAfter)
        }
        let exponent = min(max(attempt - 1, 0), 40)
        let ceiling = min(cap, base * Double(1 << min(exponent, 30)))
        return ceiling * random
    }
}
