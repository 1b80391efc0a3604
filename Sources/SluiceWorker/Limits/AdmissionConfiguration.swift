public import Sluice

/// How a worker admits job starts against rate limits, budgets and kill switches. Every field
/// has a production default.
public struct AdmissionConfiguration: Sendable {
    /// Share of every rate-limit bucket a lane may not use, so lower lanes cannot take the last
    /// capacity from higher ones. Default: batch 0.3 (may not use the last 30 %), normal 0.1,
    /// high and interactive 0 (may use everything).
    public var laneReserve: [Lane: Double] = [.batch: 0.3, .normal: 0.1, .high: 0, .interactive: 0]
    /// Output tokens reserved for a job that sets no `maxOutputTokens`. Default 4,096.
    public var defaultMaxOutputTokens: Int = 4096
    /// Model limits from the configuration file; rows in `sluice.model_limits` override them.
    public var fileLimits: [ModelLimits] = []
    /// Limits are read again at least this often (at once after `NOTIFY sluice_limits`).
    /// Default 5 s.
    public var snapshotMaxAge: Duration = .seconds(5)
    /// Cooldown after a 429 without Retry-After or reset headers. Default 2 s.
    public var defaultCooldown: Duration = .seconds(2)
    /// While the limiter's Redis is unreachable, claims pause and are retried this often.
    /// Default 1 s.
    public var unavailableRetry: Duration = .seconds(1)
    /// A job of a paused model goes back to the queue for this long (`sluice models resume`
    /// wakes it at once). Default 60 s.
    public var pausedRetry: Duration = .seconds(60)
    /// A job that may not start until budget reservations in flight settle waits this long.
    /// Default 5 s.
    public var budgetSettleRetry: Duration = .seconds(5)
    /// A job of a model without a price, for a tenant with a USD budget, waits this long
    /// before it is looked at again (add a price to release it). Default 5 min.
    public var unpricedRetry: Duration = .seconds(300)
    /// Circuit breakers per provider/model, shared by every worker through Redis (needs a
    /// Redis URL). Defaults: open after 5 consecutive failures or a failure ratio ≥ 50 % over
    /// 30 s with at least 20 calls; open for 30 s (or the provider's longer Retry-After); then
    /// one probe. Counted failures: server errors, overloaded, timeouts, connection errors.
    public var breaker = RateLimiter.BreakerPolicy()
    /// Redis key prefix and hash tag (`{sluice}:…`). Default `sluice`.
    public var keyPrefix: String = "sluice"

    public init() {}

    /// Checks the values; the error names the field and the rule.
    public func validate() throws(WorkerError) {
        for (lane, fraction) in laneReserve where !(0...0.95).contains(fraction) {
            throw WorkerError(.invalidConfiguration, "laneReserve[\(lane.rawValue)] must be from 0 to 0.95 (got \(fraction))")
        }
        if defaultMaxOutputTokens < 1 {
            throw WorkerError(.invalidConfiguration, "defaultMaxOutputTokens must be at least 1 (got \(defaultMaxOutputTokens))")
        }
        for limits in fileLimits {
            do { try limits.validate() } catch {
                throw WorkerError(.invalidConfiguration, "limits for \(limits.provider)/\(limits.model): \(error.message)")
            }
        }
        if keyPrefix.isEmpty || keyPrefix.contains("{") || keyPrefix.contains("}") {
            throw WorkerError(.invalidConfiguration, "keyPrefix must be non-empty and contain no braces")
        }
    }
}
