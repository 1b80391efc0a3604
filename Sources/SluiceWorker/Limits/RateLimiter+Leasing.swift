public import SluiceRedis

extension LimiterScripts {
    /// Capacity leasing: gives back what a worker's earlier slices did not use and takes new
    /// slices, per bucket, in one atomic step (see ``LeaseBook``).
    ///
    /// KEYS: `nb` buckets, then with checks the provider/model's cooldown, breaker and its two
    /// provider windows (requests, tokens), then the cap trailer (``RateLimiter/appendCaps``).
    /// ARGV: nb, checks (0 or 1); per bucket: capacity, refill per ms, slice, give back, floor
    /// fraction; with checks the two windows' thresholds; then the cap trailer.
    /// A bucket grants its slice only when it stays at least `floor` full after it and no
    /// waiter holds a slot in its schedule made at the bucket's current rate (a bucket near its
    /// limit decides every start in the admission script). With checks, nothing is granted
    /// while the cooldown is in force, the breaker has a failure on record or is open, or a
    /// provider window holds less than its threshold. What is given back is added first (never above the bucket's size).
    /// Returns the granted slice per bucket (0: refused), as strings.
    static let lease = RedisScript("""
    local nb, checks = tonumber(ARGV[1]), tonumber(ARGV[2])
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local open = true
    if checks == 1 then
      if redis.call('PTTL', KEYS[nb + 1]) > 0 then open = false end
      local b = redis.call('HMGET', KEYS[nb + 2], 'fails', 'open_until')
      if tonumber(b[1] or '0') > 0 or tonumber(b[2] or '0') > 0 then open = false end
      for i = 1, 2 do
        local left = redis.call('GET', KEYS[nb + 2 + i])
        if left and tonumber(left) < tonumber(ARGV[2 + nb * 5 + i]) then open = false end
      end
    end
    \(capsLua(firstArgument: 3, stride: 5))    local reply = {}
    for i = 1, nb do
      local a = 3 + (i - 1) * 5
      local cap, rate = caps[i], rates[i]
      local slice, back, floor = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
      local key = KEYS[i]
      local state = redis.call('HMGET', key, 't', 'ts', 'next', 'nrate')
      local level = cap
      if state[1] then level = math.min(cap, tonumber(state[1]) + (now - tonumber(state[2])) * rate) end
      level = math.min(cap, level + back)
      -- Waiters hold slots only in a schedule made at the current rate: one left from before a
      -- raised limit (see the admission script) is void, or no slice would be leased until the
      -- old rate's last slot had passed.
      local waiters = tonumber(state[3] or '0') > now and samerate(state[4], rate)
      local granted = 0
      if open and slice > 0 and not waiters and level - slice >= cap * floor then
        granted = slice
        level = level - slice
      end
      if back ~= 0 or granted > 0 then
        redis.call('HSET', key, 't', tostring(level), 'ts', now)
        redis.call('PEXPIRE', key, math.ceil((cap - level) / rate) + 1000)
      end
      reply[i] = tostring(granted)
    end
    return reply
    """)
}

extension RateLimiter {
    /// One bucket of a lease call: the slice wanted (0: only give back) and what goes back.
    public struct LeaseItem: Sendable {
        public var bucket: Bucket
        public var slice: Double
        public var giveBack: Double
        /// The bucket must stay at least this full (fraction of its size) after the slice.
        public var floorFraction: Double

        public init(bucket: Bucket, slice: Double, giveBack: Double, floorFraction: Double) {
            self.bucket = bucket
            self.slice = slice
            self.giveBack = giveBack
            self.floorFraction = floorFraction
        }
    }

    /// What must be clear before a provider/model's buckets are leased: its cooldown, its
    /// breaker, and its two provider windows (requests, tokens) with the least each must hold.
    public struct LeaseChecks: Sendable {
        public var cooldown: String
        public var breaker: String
        public var requestsWindow: (key: String, threshold: Double)
        public var tokensWindow: (key: String, threshold: Double)

        public init(cooldown: String, breaker: String, requestsWindow: (key: String, threshold: Double),
                    tokensWindow: (key: String, threshold: Double)) {
            self.cooldown = cooldown
            self.breaker = breaker
            self.requestsWindow = requestsWindow
            self.tokensWindow = tokensWindow
        }
    }

    /// Gives back and takes slices (``LimiterScripts/lease``), one `EVALSHA`. Returns the
    /// slice granted per item, in order (0: refused, the bucket is near its limit or a check
    /// failed).
    public func lease(_ items: [LeaseItem], checks: LeaseChecks?) async throws(RedisError) -> [Double] {
        guard !items.isEmpty else { return [] }
        var keys = items.map(\.bucket.key)
        var args = [String(items.count), checks == nil ? "0" : "1"]
        for item in items {
            args += [Self.number(item.bucket.capacity), Self.number(item.bucket.refillPerMillisecond), Self.number(item.slice),
                     Self.number(item.giveBack), Self.number(item.floorFraction)]
        }
        if let checks {
            keys += [checks.cooldown, checks.breaker, checks.requestsWindow.key, checks.tokensWindow.key]
            args += [Self.number(checks.requestsWindow.threshold), Self.number(checks.tokensWindow.threshold)]
        }
        Self.appendCaps(items.map(\.bucket), keys: &keys, args: &args)
        let reply = try await redis.eval(LimiterScripts.lease, keys: keys, args: args)
        let granted = (reply.array ?? []).map { $0.string.flatMap(Double.init) ?? 0 }
        return items.indices.map { $0 < granted.count ? granted[$0] : 0 }
    }

    /// Records a provider's advertised per-minute limit for a bucket (its cap key) for `ttl`,
    /// or removes it (nil: the provider's limit is not below the configured one).
    public func advertise(_ capKey: String, limit: Int?, ttl: Duration) async throws(RedisError) {
        if let limit {
            _ = try await redis.command(["SET", capKey, String(max(1, limit)), "PX", String(max(1000, Self.milliseconds(ttl)))])
        } else {
            _ = try await redis.command(["DEL", capKey])
        }
    }
}
