public import Foundation
public import SluiceRedis

/// The shared limiter state in Redis: token buckets, cooldowns and budget counters, taken and
/// settled by one atomic script call each (``LimiterScripts``). No decision is ever made from a
/// local copy, so limits do not multiply with the number of workers.
public struct RateLimiter: Sendable {
    /// One token bucket a job start takes from.
    public struct Bucket: Sendable, Hashable {
        /// Full key (with the hash tag).
        public var key: String
        /// Size: the per-minute limit (a full minute's burst).
        public var capacity: Double
        /// Refill per millisecond (capacity / 60,000 for per-minute limits).
        public var refillPerMillisecond: Double
        /// What this start takes (1 request, or its token envelope).
        public var amount: Double
        /// Fraction of the bucket this job's lane may not use (lane headroom).
        public var floorFraction: Double
        /// What the settlement counts instead of `amount`, from the call's actual usage.
        public var settle: @Sendable (SettledUsage) -> Double
        /// A key holding the provider's advertised limit for this bucket (per minute), set when
        /// it is lower than `capacity`: the scripts then use it as the bucket's size, with the
        /// refill rate lowered in proportion. Nil: no cap.
        public var capKey: String?

        public init(key: String, capacity: Double, refillPerMillisecond: Double, amount: Double, floorFraction: Double,
                    capKey: String? = nil, settle: @escaping @Sendable (SettledUsage) -> Double) {
            self.key = key
            self.capKey = capKey
            self.capacity = capacity
            self.refillPerMillisecond = refillPerMillisecond
            self.amount = amount
            self.floorFraction = floorFraction
            self.settle = settle
        }

        public static func == (a: Bucket, b: Bucket) -> Bool {
            a.key == b.key && a.capacity == b.capacity && a.amount == b.amount && a.floorFraction == b.floorFraction
        }
        public func hash(into hasher: inout Hasher) { hasher.combine(key) }
    }

    /// A hard-budget counter (tokens or USD of one tenant in one window).
    public struct Budget: Sendable, Hashable {
        public var key: String
        public var limit: Double
        /// The reserved envelope.
        public var amount: Double
        /// Recorded spend in the window, the counter's value when Redis does not have it.
        public var seed: Double
        /// Lifetime of the counter (until a little after its window ends).
        public var ttlSeconds: Int
        /// Tokens (true) or USD (false), for settlement.
        public var countsTokens: Bool

        public init(key: String, limit: Double, amount: Double, seed: Double, ttlSeconds: Int, countsTokens: Bool) {
            self.key = key
            self.limit = limit
            self.amount = amount
            self.seed = seed
            self.ttlSeconds = ttlSeconds
            self.countsTokens = countsTokens
        }
    }

    /// What a finished call used, for settlement.
    public struct SettledUsage: Sendable, Hashable {
        public var inputTokens: Int
        public var outputTokens: Int
        public var costUSD: Double
        public init(inputTokens: Int, outputTokens: Int, costUSD: Double) {
            self.inputTokens = inputTokens
            self.outputTokens = outputTokens
            self.costUSD = costUSD
        }
        /// A call that failed before consuming tokens: everything refunded.
        public static let nothing = SettledUsage(inputTokens: 0, outputTokens: 0, costUSD: 0)
    }

    /// One job start's request.
    public struct Request: Sendable {
        /// Unique per attempt (`<job id>:<attempt>`), so admission and settlement are idempotent.
        public var reservation: String
        public var buckets: [Bucket]
        public var cooldowns: [String]
        public var budgets: [Budget]
        /// How long an unsettled reservation is kept (then it expires and nothing is refunded).
        public var reservationTTL: Duration
        /// The provider/model's circuit breaker key, if it has one.
        public var breaker: String?
        /// How long a half-open breaker's probe may take before another start may probe.
        public var probeTimeout: Duration
        /// Provider windows (keys) and what this start takes from each (1 request, its tokens).
        public var windows: [(key: String, amount: Double)] = []
        /// The model's API-key pool: admission takes the key with the most remaining capacity.
        public var pool: [PoolKey] = []

        public init(reservation: String, buckets: [Bucket], cooldowns: [String], budgets: [Budget], reservationTTL: Duration,
                    breaker: String? = nil, probeTimeout: Duration = .seconds(30)) {
            self.reservation = reservation
            self.buckets = buckets
            self.cooldowns = cooldowns
            self.budgets = budgets
            self.reservationTTL = reservationTTL
            self.breaker = breaker
            self.probeTimeout = probeTimeout
        }
    }

    /// One API key of a key pool: its id (the configuration's name for it), its cooldown key
    /// and its buckets.
    public struct PoolKey: Sendable {
        public var id: String
        public var cooldown: String
        public var buckets: [Bucket]

        public init(id: String, cooldown: String, buckets: [Bucket]) {
            self.id = id
            self.cooldown = cooldown
            self.buckets = buckets
        }
    }

    /// What admission decided.
    public enum Decision: Sendable, Equatable {
        /// Taken from every bucket and budget; `budgetsUsed` are the budget counters afterwards;
        /// `probe`: this start is the half-open breaker's probe; `breakerFailures`: failures the
        /// breaker has on record (its successes must then be recorded too).
        /// `poolKey`: the index in the request's pool of the key taken (nil without a pool).
        case admitted(budgetsUsed: [Double], probe: Bool = false, breakerFailures: Int = 0, poolKey: Int? = nil)
        /// Every key of the pool is short or cooling down: wait this long (the soonest key).
        case pool(wait: Duration)
        /// The provider/model's circuit breaker is open (or its probe is running): wait this long.
        case breaker(wait: Duration)
        /// The bucket at this index is short: wait this long.
        case bucket(index: Int, wait: Duration)
        /// The cooldown at this index is in force for this long.
        case cooldown(index: Int, wait: Duration)
        /// The budget at this index is spent (its window ends in `resetsIn`).
        case budget(index: Int, resetsIn: Duration)
    }

    /// A reservation to settle (kept in memory while Redis is unreachable).
    public struct Reservation: Sendable {
        public var request: Request
        public init(request: Request) { self.request = request }
    }

    public let redis: RedisClient
    /// The key prefix, also the hash tag: keys are `{prefix}:…`. Default `sluice`.
    public let prefix: String

    public init(redis: RedisClient, prefix: String = "sluice") {
        self.redis = redis
        self.prefix = prefix
    }

    /// A key under this limiter's hash tag.
    public func key(_ parts: String...) -> String {
        "{\(prefix)}:" + parts.joined(separator: ":")
    }

    /// Checks and takes, all or nothing (one `EVALSHA`).
    public func admit(_ request: Request) async throws(WorkerError) -> Decision {
        var keys = [key("res", request.reservation)]
        keys += request.buckets.map(\.key)
        keys += request.cooldowns
        keys += request.budgets.map(\.key)
        if let breaker = request.breaker { keys.append(breaker) }
        keys += request.windows.map(\.key)
        for member in request.pool { keys += [member.cooldown] + member.buckets.map(\.key) }
        var args = [String(request.buckets.count), String(request.cooldowns.count), String(request.budgets.count),
                    String(max(1000, Int(request.reservationTTL.components.seconds) * 1000)),
                    request.breaker == nil ? "0" : "1", String(Self.milliseconds(request.probeTimeout)), String(request.windows.count)]
        for bucket in request.buckets {
            args += [Self.number(bucket.capacity), Self.number(bucket.refillPerMillisecond), Self.number(bucket.amount),
                     Self.number(bucket.floorFraction)]
        }
        for budget in request.budgets {
            args += [Self.number(budget.limit), Self.number(budget.amount), Self.number(budget.seed), String(max(1, budget.ttlSeconds))]
        }
        args += request.windows.map { Self.number($0.amount) }
        args.append(String(request.pool.count))
        for member in request.pool {
            args.append(String(member.buckets.count))
            for bucket in member.buckets {
                args += [Self.number(bucket.capacity), Self.number(bucket.refillPerMillisecond), Self.number(bucket.amount),
                         Self.number(bucket.floorFraction)]
            }
        }
        Self.appendCaps(request.buckets, keys: &keys, args: &args)
        let reply: RedisValue
        do {
            reply = try await redis.eval(LimiterScripts.admit, keys: keys, args: args)
        } catch {
            throw WorkerError(.limiter, "admission failed: \(error)", underlying: error)
        }
        guard let items = reply.array, let first = items.first?.int else {
            throw WorkerError(.limiter, "the admission script returned \(reply)")
        }
        if first == 1 {
            let chosen = Int(items.count > 3 ? items[3].int ?? 0 : 0)
            return .admitted(budgetsUsed: items.dropFirst(4).compactMap { $0.string.flatMap(Double.init) },
                             probe: items.count > 1 && items[1].int == 1, breakerFailures: Int(items.count > 2 ? items[2].int ?? 0 : 0),
                             poolKey: chosen > 0 && chosen <= request.pool.count ? chosen - 1 : nil)
        }
        let wait = Duration.milliseconds(max(1, items.count > 1 ? (items[1].int ?? 1) : 1))
        let index = items.count > 3 ? Int(items[3].int ?? 1) - 1 : 0
        switch items.count > 2 ? items[2].string : nil {
        case "cooldown": return .cooldown(index: index, wait: wait)
        case "budget": return .budget(index: index, resetsIn: wait)
        case "breaker": return .breaker(wait: wait)
        case "window": return .cooldown(index: -1, wait: wait)
        case "pool": return .pool(wait: wait)
        // A half-open breaker's probe is running: look again soon (it may close any moment).
        case "probe": return .breaker(wait: min(wait, .seconds(2)))
        default: return .bucket(index: index, wait: wait)
        }
    }

    /// Replaces a reservation by actual usage; idempotent (a second call changes nothing).
    /// Returns false when it was already settled or had expired.
    @discardableResult
    public func settle(_ request: Request, usage: SettledUsage, breakerSuccess: (key: String, policy: BreakerPolicy)? = nil) async throws(RedisError) -> Bool {
        var keys = [key("res", request.reservation)]
        var args: [String] = []
        for bucket in request.buckets {
            keys.append(bucket.key)
            args.append(Self.number(bucket.settle(usage)))
        }
        for budget in request.budgets {
            keys.append(budget.key)
            args.append(Self.number(budget.countsTokens ? Double(usage.inputTokens + usage.outputTokens) : usage.costUSD))
        }
        if let breakerSuccess {
            keys.append(breakerSuccess.key)
            args += [String(Self.milliseconds(breakerSuccess.policy.window)), "breaker"]
        }
        let reply = try await redis.eval(LimiterScripts.settle, keys: keys, args: args)
        return reply.int == 1
    }

    /// Puts a cooldown in force for `duration` (never shortening a longer one). Every worker
    /// honours it before its next call of that provider/model.
    /// `announce`: the provider/model to publish on ``eventsChannel`` when the cooldown is set
    /// or lengthened, so every worker's cached model state and leases end within milliseconds.
    public func cooldown(_ cooldownKey: String, for duration: Duration, announce model: String? = nil) async throws(RedisError) {
        let ms = max(1, Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000))
        _ = try await redis.eval(LimiterScripts.cooldown, keys: [cooldownKey], args: [String(ms)] + (model.map { [eventsChannel, $0] } ?? []))
    }

    /// The channel on which the limiter's scripts publish a provider/model whose shared state
    /// turned against starting it (a cooldown set, a counted failure in its breaker, a provider
    /// window falling low); the payload is `provider/model`. Workers subscribe to it
    /// (``Admission/run()``) to end their cached model state and leases at once.
    public var eventsChannel: String { key("events") }

    /// Whether a provider/model is clear for starts without a bucket (``LimiterScripts/gate``):
    /// no cooldown, no breaker failure on record, provider windows absent or at least their
    /// thresholds (requests, tokens). One read-only `EVALSHA`.
    public func gate(_ checks: LeaseChecks) async throws(RedisError) -> Bool {
        let reply = try await redis.eval(LimiterScripts.gate, keys: [checks.cooldown, checks.breaker, checks.requestsWindow.key,
                                                                     checks.tokensWindow.key],
                                         args: [Self.number(checks.requestsWindow.threshold), Self.number(checks.tokensWindow.threshold)])
        return reply.int == 1
    }

    /// Circuit breaker settings (see ``LimiterScripts/breaker``).
    public struct BreakerPolicy: Sendable, Hashable {
        /// Consecutive failures that open the breaker. Default 5.
        public var consecutiveFailures: Int = 5
        /// Failure ratio over `window` that opens it… Default 0.5.
        public var failureRatio: Double = 0.5
        /// …once the window has at least this many calls. Default 20.
        public var minimumCalls: Int = 20
        /// The ratio's window. Default 30 s.
        public var window: Duration = .seconds(30)
        /// How long it stays open before a probe (the provider's Retry-After when longer).
        /// Default 30 s.
        public var openFor: Duration = .seconds(30)
        public init() {}
    }

    /// Records a call's outcome in the provider/model's breaker (a counted failure, or a
    /// success). Returns true when this call opened it.
    @discardableResult
    /// `announce`: the provider/model to publish on ``eventsChannel`` when a failure is counted.
    public func recordBreaker(_ breakerKey: String, success: Bool, policy: BreakerPolicy, openFor: Duration? = nil,
                              announce model: String? = nil) async throws(RedisError) -> Bool {
        let reply = try await redis.eval(LimiterScripts.breaker, keys: [breakerKey], args: [
            success ? "1" : "0", String(policy.consecutiveFailures), Self.number(policy.failureRatio), String(policy.minimumCalls),
            String(Self.milliseconds(policy.window)), String(Self.milliseconds(max(openFor ?? .zero, policy.openFor))),
        ] + (model.map { [eventsChannel, $0] } ?? []))
        return reply.int == 1
    }

    /// Gives back a half-open breaker's probe whose call said nothing about the provider's
    /// health (a 429, a request the provider refused, a cancel, a lost lease): the next start
    /// probes at once instead of every start waiting out the probe's timeout.
    public func releaseProbe(_ breakerKey: String) async throws(RedisError) {
        _ = try await redis.command(["HDEL", breakerKey, "probe_until"])
    }

    /// A breaker's state for `sluice limits show`: open for how long, failures on record.
    public func breakerState(_ breakerKey: String) async throws(RedisError) -> (openFor: Duration?, failures: Int) {
        let replies = try await redis.pipeline([["HMGET", breakerKey, "open_until", "fails"], ["TIME"]])
        guard let fields = replies[0].array, let time = replies[1].array, time.count == 2,
              let seconds = time[0].string.flatMap(Double.init), let micros = time[1].string.flatMap(Double.init) else { return (nil, 0) }
        let now = seconds * 1000 + (micros / 1000).rounded(.down)
        let openUntil = fields.first?.string.flatMap(Double.init) ?? 0
        let failures = Int(fields.last?.string.flatMap(Double.init) ?? 0)
        return (openUntil > now ? .milliseconds(Int64(openUntil - now)) : nil, failures)
    }

    /// The cap trailer of the admission and lease scripts: the buckets' cap keys at the end of
    /// KEYS, their 1-based bucket indices and their count at the end of ARGV.
    static func appendCaps(_ buckets: [Bucket], keys: inout [String], args: inout [String]) {
        var indices: [String] = []
        for (index, bucket) in buckets.enumerated() {
            guard let capKey = bucket.capKey else { continue }
            keys.append(capKey)
            indices.append(String(index + 1))
        }
        args += indices
        args.append(String(indices.count))
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    /// Records what the provider says remains (`remaining`) until its window resets in `reset`
    /// (``LimiterScripts/window``).
    /// `announceBelow`: a threshold and the provider/model to publish on ``eventsChannel`` when
    /// the window falls below it.
    public func providerWindow(_ windowKey: String, remaining: Int, reset: Duration,
                               announceBelow: (threshold: Double, model: String)? = nil) async throws(RedisError) {
        var args = [String(remaining), String(max(1, Self.milliseconds(reset)))]
        if let announceBelow { args += [Self.number(announceBelow.threshold), eventsChannel, announceBelow.model] }
        _ = try await redis.eval(LimiterScripts.window, keys: [windowKey], args: args)
    }

    /// The level a bucket has now (capacity when Redis has no state for it), for `limits show`.
    public func level(of bucketKey: String, capacity: Double, refillPerMillisecond: Double) async throws(RedisError) -> Double {
        let replies = try await redis.pipeline([["HMGET", bucketKey, "t", "ts"], ["TIME"]])
        guard let state = replies[0].array, let level = state.first?.string.flatMap(Double.init),
              let ts = state.last?.string.flatMap(Double.init), let time = replies[1].array, time.count == 2,
              let seconds = time[0].string.flatMap(Double.init), let micros = time[1].string.flatMap(Double.init)
        else { return capacity }
        return min(capacity, level + (seconds * 1000 + (micros / 1000).rounded(.down) - ts) * refillPerMillisecond)
    }

    /// Remaining cooldown of a key, nil when none is in force.
    public func cooldownRemaining(_ cooldownKey: String) async throws(RedisError) -> Duration? {
        let ttl = try await redis.command(["PTTL", cooldownKey]).int ?? -2
        return ttl > 0 ? .milliseconds(ttl) : nil
    }

    /// Redis's clock (seconds since 1970); a cheap probe of whether Redis answers. (Budget
    /// windows use the worker's UTC clock; see docs/ARCHITECTURE.md, "Budgets".)
    public func serverTime() async throws(RedisError) -> Date {
        let reply = try await redis.command(["TIME"])
        guard let parts = reply.array, parts.count == 2, let s = parts[0].string.flatMap(Double.init),
              let us = parts[1].string.flatMap(Double.init) else { return Date() }
        return Date(timeIntervalSince1970: s + us / 1e6)
    }

    static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.9f", value)
    }
}
