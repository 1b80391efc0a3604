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
    /// Capacity leasing: while a bucket is far from its limit, a worker takes a slice of it in
    /// one script call and admits from the slice locally (``LeaseBook``). Defaults below.
    public var leasing = Leasing()
    /// Leave provider/models that are cooling down, behind an open breaker or with an empty
    /// bucket out of claims until their refill time (``Admission/skipModels``), so a worker
    /// does not claim jobs only to put them back. Default on.
    public var skipLimitedModels = true
    /// How long a provider's advertised limit (`x-ratelimit-limit-*`,
    /// `anthropic-ratelimit-*-limit`) lower than the configured one caps the model's bucket
    /// after the last response that said so. Default 10 min.
    public var advertisedLimitTTL: Duration = .seconds(600)

    /// Capacity leasing settings. A lease is a slice taken from the shared bucket in Redis, so
    /// a lease never admits beyond the bucket; it only moves where the per-job decision is made.
    public struct Leasing: Sendable {
        /// Off: every start of a limited job runs the admission script. Default on.
        public var enabled = true
        /// How long a slice is used before what is left of it goes back to the bucket (also the
        /// longest a cooldown or breaker set by another worker can go unseen by leased starts).
        /// Default 1 s.
        public var duration: Duration = .seconds(1)
        /// The largest slice, as a fraction of the bucket's capacity. Default 0.02.
        public var maxSliceFraction: Double = 0.02
        /// A slice is granted only while the bucket stays at least this full after it (and
        /// never below the largest lane reserve): near the limit every start is decided in
        /// Redis, one by one. Default 0.5.
        public var floorFraction: Double = 0.5
        /// A bucket is leased only when its largest slice holds at least this many starts of
        /// the job at hand (small buckets are always decided per job). Default 16.
        public var minimumStartsPerSlice: Int = 16

        public init() {}
    }

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
        if !(0...0.5).contains(leasing.maxSliceFraction) {
            throw WorkerError(.invalidConfiguration, "leasing.maxSliceFraction must be from 0 to 0.5 (got \(leasing.maxSliceFraction))")
        }
        if !(0...1).contains(leasing.floorFraction) {
            throw WorkerError(.invalidConfiguration, "leasing.floorFraction must be from 0 to 1 (got \(leasing.floorFraction))")
        }
        if leasing.duration < .milliseconds(10) || leasing.duration > .seconds(60) {
            throw WorkerError(.invalidConfiguration, "leasing.duration must be from 10 ms to 60 s (got \(leasing.duration))")
        }
        if leasing.minimumStartsPerSlice < 1 {
            throw WorkerError(.invalidConfiguration, "leasing.minimumStartsPerSlice must be at least 1 (got \(leasing.minimumStartsPerSlice))")
        }
        if advertisedLimitTTL < .seconds(1) {
            throw WorkerError(.invalidConfiguration, "advertisedLimitTTL must be at least 1 s (got \(advertisedLimitTTL))")
        }
        if keyPrefix.isEmpty || keyPrefix.contains("{") || keyPrefix.contains("}") {
            throw WorkerError(.invalidConfiguration, "keyPrefix must be non-empty and contain no braces")
        }
    }
}
