import SluiceRedis

/// The limiter's Lua scripts. Every key a script touches is passed in `KEYS` and carries the
/// same `{hash tag}` (the key prefix), so each script runs unchanged on Redis Cluster; the
/// clock is Redis `TIME`, never a worker's.
///
/// A token bucket is a hash `{t = level, ts = ms of last update}`; a missing key is a full
/// bucket (keys expire once the bucket would be full again, so idle keys vanish). Levels may go
/// negative: an envelope larger than what a lane may use starts once the bucket is as full as
/// that lane allows, and later callers wait for the debt to refill.
enum LimiterScripts {
    /// Lua shared by the admission and lease scripts: each bucket's size and refill rate
    /// (`caps[i]`, `rates[i]`, from ARGV at `firstArgument + (i - 1) * stride`), lowered to the
    /// provider-advertised limit when a cap key (the trailer: `ncap` cap keys at the end of KEYS,
    /// their bucket indices then `ncap` at the end of ARGV) holds a smaller one; the refill rate
    /// scales with it. Expects `nb` to be defined. Also defines `samerate(recorded, rate)`: whether
    /// a waiter schedule recorded at rate `recorded` (a bucket's `nrate`, text) belongs to `rate`
    /// (relative tolerance: Redis stores numbers as text); a schedule of another rate is void.
    static func capsLua(firstArgument: Int, stride: Int) -> String {
        """
            local function samerate(recorded, rate) return math.abs(tonumber(recorded or '-1') - rate) <= rate * 1e-9 end
            local ncap = tonumber(ARGV[#ARGV])
            local caps, rates = {}, {}
            for i = 1, nb do
              local a = \(firstArgument) + (i - 1) * \(stride)
              caps[i], rates[i] = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
            end
            for j = 1, ncap do
              local v = redis.call('GET', KEYS[#KEYS - ncap + j])
              local i = tonumber(ARGV[#ARGV - ncap - 1 + j])
              if v and tonumber(v) < caps[i] then
                rates[i] = rates[i] * tonumber(v) / caps[i]
                caps[i] = tonumber(v)
              end
            end

        """
    }

    /// Admission: checks every bucket, cooldown, budget and the circuit breaker of one job
    /// start and takes from all of them, or from none.
    ///
    /// KEYS: reservation, then `nb` buckets, `nc` cooldowns, `ng` budget counters, `nr` (0 or 1)
    /// breaker, `nw` provider windows (what the provider's headers said remains until its reset),
    /// then per API key of a key pool its cooldown and its `kb` buckets, then `ncap` cap keys
    /// (a provider's advertised limit, ``RateLimiter/Bucket/capKey``).
    /// ARGV: nb, nc, ng, reservation TTL (ms), nr, probe time (ms), nw; per bucket: capacity,
    /// refill per ms, amount, floor fraction (the lane's reserve); per budget: limit, amount, seed
    /// (recorded spend, used when the counter does not exist), TTL (s); per window: amount; then
    /// np (keys in the pool, 0 without one) and per key: kb, then per bucket the four values of a
    /// bucket; then per cap key the 1-based index of its bucket, then ncap. Of the keys not cooling down whose buckets all have room, the one with the most
    /// remaining capacity (the smallest remaining fraction of its buckets after this start, the
    /// largest wins) is taken, in the same all-or-nothing step as the other buckets.
    /// Returns `{1, probe, breaker failures, key, used…}` (probe 1: this start is the half-open
    /// breaker's probe; key: the 1-based pool key taken, 0 without a pool; used: budget counters
    /// after the reservation) or `{0, wait ms, kind, index}` with kind `bucket` | `cooldown` |
    /// `budget` | `breaker` | `pool` (every key short: the wait is the soonest key's) (1-based
    /// index within its kind). A bucket's wait is a slot in the bucket's shared schedule (field
    /// `next`): waiters are spaced by the refill time of what each takes. A reservation that already exists (a repeated admission of the
    /// same attempt) is admitted again without taking anything. With no bucket and no budget no
    /// reservation is written.
    static let admit = RedisScript("""
    local nb, nc, ng = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
    local resttl, nr, probems, nw = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
    local wbase0 = 1 + nb + nc + ng + nr
    local wargs0 = 8 + nb * 4 + ng * 4
    local np = tonumber(ARGV[wargs0 + nw] or '0')
    local reserve = nb + ng + np > 0
    if reserve and redis.call('EXISTS', KEYS[1]) == 1 then
      return {1, 0, 0, tonumber(redis.call('HGET', KEYS[1], '_key') or '0')}
    end
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local probe, fails = 0, 0
    if nr == 1 then
      local bk = KEYS[2 + nb + nc + ng]
      local b = redis.call('HMGET', bk, 'open_until', 'probe_until', 'fails')
      fails = tonumber(b[3] or '0')
      local open_until = tonumber(b[1] or '0')
      if open_until > 0 then
        if now < open_until then return {0, open_until - now, 'breaker', 1} end
        local probe_until = tonumber(b[2] or '0')
        if now < probe_until then return {0, probe_until - now, 'probe', 1} end
        probe = 1
      end
    end
    for i = 1, nc do
      local ttl = redis.call('PTTL', KEYS[1 + nb + i])
      if ttl > 0 then return {0, ttl, 'cooldown', i} end
    end
    local wbase = 1 + nb + nc + ng + nr
    local wargs = 8 + nb * 4 + ng * 4
    for i = 1, nw do
      local left = redis.call('GET', KEYS[wbase + i])
      if left and tonumber(left) < tonumber(ARGV[wargs + i - 1]) then
        return {0, math.max(redis.call('PTTL', KEYS[wbase + i]), 1), 'window', i}
      end
    end
    -- Provider-advertised limits below the configured ones (the trailer: ncap cap keys at the
    -- end of KEYS, their bucket indices then ncap at the end of ARGV) lower a bucket's size and
    -- refill rate alike.
    \(capsLua(firstArgument: 8, stride: 4))    local levels = {}
    local wait, blocking = 0, 0
    for i = 1, nb do
      local a = 8 + (i - 1) * 4
      local cap, rate, amount, floor = caps[i], rates[i], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
      local key = KEYS[1 + i]
      local state = redis.call('HMGET', key, 't', 'ts')
      local level = cap
      if state[1] then
        level = math.min(cap, tonumber(state[1]) + (now - tonumber(state[2])) * rate)
      end
      levels[i] = level
      local keep = cap * floor
      local need = math.min(amount, cap - keep) + keep
      if level < need then
        local w = math.ceil((need - level) / rate)
        if w > wait then wait, blocking = w, i end
      end
    end
    if wait > 0 then
      -- A shared schedule of the bucket's waiters: this start gets the next slot after those
      -- already handed out, and the slot after it is one refill of its amount later. Every
      -- worker's put-back jobs come back at the bucket's rate, not each worker's at the full rate.
      -- The schedule belongs to the rate it was made at ('nrate'): once the limit (or an
      -- advertised cap) changes, it starts again from this wait, so jobs woken by a raised
      -- limit are not given the slots the old rate had spaced out.
      local a = 8 + (blocking - 1) * 4
      local bkey = KEYS[1 + blocking]
      local sched = redis.call('HMGET', bkey, 'next', 'nrate')
      local nxt = tonumber(sched[1] or '0')
      if not samerate(sched[2], rates[blocking]) then nxt = 0 end
      local slot = math.max(now + wait, nxt)
      redis.call('HSET', bkey, 'next', slot + math.ceil(tonumber(ARGV[a + 2]) / rates[blocking]), 'nrate', rates[blocking])
      return {0, slot - now, 'bucket', blocking}
    end
    -- The key pool: the key with the most remaining capacity among those that may start now.
    local chosen, pool = 0, {}
    if np > 0 then
      local best, minwait = -1e18, -1
      local ki, ai = wbase0 + nw + 1, wargs0 + nw + 1
      for g = 1, np do
        local kb = tonumber(ARGV[ai])
        ai = ai + 1
        local ttl = redis.call('PTTL', KEYS[ki])
        ki = ki + 1
        local ok, score, gwait = ttl <= 0, 1e18, math.max(ttl, 0)
        local group = {}
        for b = 1, kb do
          local cap, rate, amount, floor = tonumber(ARGV[ai]), tonumber(ARGV[ai + 1]), tonumber(ARGV[ai + 2]), tonumber(ARGV[ai + 3])
          local state = redis.call('HMGET', KEYS[ki], 't', 'ts')
          local level = cap
          if state[1] then level = math.min(cap, tonumber(state[1]) + (now - tonumber(state[2])) * rate) end
          local keep = cap * floor
          local need = math.min(amount, cap - keep) + keep
          if level < need then
            ok = false
            gwait = math.max(gwait, math.ceil((need - level) / rate))
          end
          score = math.min(score, (level - amount) / cap)
          group[b] = {KEYS[ki], ai, level}
          ki, ai = ki + 1, ai + 4
        end
        pool[g] = group
        if ok and score > best then best, chosen = score, g end
        if not ok and (minwait < 0 or gwait < minwait) then minwait = gwait end
      end
      if chosen == 0 then return {0, math.max(minwait, 1), 'pool', 1} end
    end
    for i = 1, ng do
      local a = 8 + nb * 4 + (i - 1) * 4
      local limit, seed, ttl = tonumber(ARGV[a]), ARGV[a + 2], tonumber(ARGV[a + 3])
      local key = KEYS[1 + nb + nc + i]
      local value = redis.call('GET', key)
      if not value then
        redis.call('SET', key, seed, 'EX', ttl)
        value = seed
      end
      if tonumber(value) >= limit then return {0, redis.call('TTL', key) * 1000, 'budget', i} end
    end
    if probe == 1 then
      redis.call('HSET', KEYS[2 + nb + nc + ng], 'probe_until', now + probems)
    end
    for i = 1, nw do
      if redis.call('EXISTS', KEYS[wbase + i]) == 1 then
        redis.call('INCRBYFLOAT', KEYS[wbase + i], -tonumber(ARGV[wargs + i - 1]))
      end
    end
    local reply = {1, probe, fails, chosen}
    if not reserve then return reply end
    local fields = {'_key', chosen}
    if chosen > 0 then
      for _, b in ipairs(pool[chosen]) do
        local key, a, level = b[1], b[2], b[3]
        local cap, rate, amount = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
        redis.call('HSET', key, 't', tostring(level - amount), 'ts', now)
        redis.call('PEXPIRE', key, math.ceil((cap - (level - amount)) / rate) + 1000)
        fields[#fields + 1] = key
        fields[#fields + 1] = tostring(amount) .. '|' .. ARGV[a] .. '|' .. ARGV[a + 1]
      end
    end
    for i = 1, nb do
      local a = 8 + (i - 1) * 4
      local cap, rate, amount = caps[i], rates[i], tonumber(ARGV[a + 2])
      local key = KEYS[1 + i]
      redis.call('HSET', key, 't', tostring(levels[i] - amount), 'ts', now)
      redis.call('PEXPIRE', key, math.ceil((cap - (levels[i] - amount)) / rate) + 1000)
      fields[#fields + 1] = key
      fields[#fields + 1] = tostring(amount) .. '|' .. tostring(cap) .. '|' .. tostring(rate)
    end
    for i = 1, ng do
      local a = 8 + nb * 4 + (i - 1) * 4
      local key = KEYS[1 + nb + nc + i]
      reply[#reply + 1] = redis.call('INCRBYFLOAT', key, ARGV[a + 1])
      fields[#fields + 1] = key
      fields[#fields + 1] = ARGV[a + 1]
    end
    redis.call('HSET', KEYS[1], unpack(fields))
    redis.call('PEXPIRE', KEYS[1], resttl)
    return reply
    """)

    /// Circuit breaker bookkeeping after a call of one provider/model (KEYS[1]).
    ///
    /// ARGV: outcome (1 success, 0 counted failure), consecutive failures that open it, failure
    /// ratio that opens it, calls the ratio needs, ratio window (ms), open time (ms).
    /// Closed → open after N consecutive failures, or a failure ratio ≥ R over a window with at
    /// least M calls; open → half-open when the open time has passed (admission lets one probe
    /// through); the probe's success closes it, its failure opens it again.
    /// Returns 1 when this call opened (or re-opened) the breaker, else 0.
    /// With ARGV[7] (a channel) and ARGV[8] (the provider/model), a counted failure is
    /// published there.
    static let breaker = RedisScript("""
    local ok = ARGV[1] == '1'
    if not ok and ARGV[7] then redis.call('PUBLISH', ARGV[7], ARGV[8]) end
    local n, ratio, minimum, window, open = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local b = redis.call('HMGET', KEYS[1], 'fails', 'ws', 'wf', 'wt', 'open_until')
    local fails, ws, wf, wt = tonumber(b[1] or '0'), tonumber(b[2] or '0'), tonumber(b[3] or '0'), tonumber(b[4] or '0')
    local open_until = tonumber(b[5] or '0')
    if now - ws > window then ws, wf, wt = now, 0, 0 end
    wt = wt + 1
    local opened = 0
    if ok then
      fails = 0
      if open_until > 0 and now >= open_until then
        open_until = 0
        wf, wt = 0, 0
        redis.call('HDEL', KEYS[1], 'probe_until')
      end
    else
      fails = fails + 1
      wf = wf + 1
      if open_until > 0 and now >= open_until then
        open_until, opened = now + open, 1
        redis.call('HDEL', KEYS[1], 'probe_until')
      elseif open_until == 0 and (fails >= n or (wt >= minimum and wf / wt >= ratio)) then
        open_until, opened = now + open, 1
      end
    end
    redis.call('HSET', KEYS[1], 'fails', fails, 'ws', ws, 'wf', wf, 'wt', wt, 'open_until', open_until)
    redis.call('PEXPIRE', KEYS[1], window * 2 + open + 60000)
    return opened
    """)

    /// Settlement: replaces what a reservation took by what the call actually used, once.
    ///
    /// KEYS: reservation, then the bucket and budget keys it took from (in admission order),
    /// then optionally the provider/model's breaker key (a successful call).
    /// ARGV: the actual amount for each bucket and budget key; with a breaker key, two more: the
    /// breaker's ratio window (ms) and `breaker` (so `#ARGV == #KEYS` tells a breaker key is there).
    /// A successful call counts in the breaker when the breaker has state (a failure was
    /// recorded in its window): consecutive failures go back to 0 and the call counts in the
    /// failure ratio's denominator. Counting every success there, in the round trip the
    /// settlement makes anyway, is what keeps a few failures among hundreds of concurrent calls
    /// from looking like "N in a row" or a high ratio.
    /// Returns 1 when applied, 0 when the reservation was already settled (or expired).
    static let settle = RedisScript("""
    if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local last = #KEYS
    if #ARGV == #KEYS then
      last = #KEYS - 1
      local bk, window = KEYS[#KEYS], tonumber(ARGV[#ARGV - 1])
      if redis.call('EXISTS', bk) == 1 then
        local b = redis.call('HMGET', bk, 'ws', 'wt', 'open_until')
        local ws, wt, open_until = tonumber(b[1] or '0'), tonumber(b[2] or '0'), tonumber(b[3] or '0')
        if now - ws > window then
          ws, wt = now, 0
          redis.call('HSET', bk, 'wf', 0)
        end
        redis.call('HSET', bk, 'fails', 0, 'ws', ws, 'wt', wt + 1)
        if open_until > 0 and now >= open_until then
          redis.call('HSET', bk, 'open_until', 0, 'wf', 0, 'wt', 0)
          redis.call('HDEL', bk, 'probe_until')
        end
      end
    end
    for i = 2, last do
      local key = KEYS[i]
      local taken = redis.call('HGET', KEYS[1], key)
      if taken then
        local actual = tonumber(ARGV[i - 1])
        local amount, cap, rate = string.match(taken, '^([^|]+)|([^|]+)|([^|]+)$')
        if amount then
          amount, cap, rate = tonumber(amount), tonumber(cap), tonumber(rate)
          local state = redis.call('HMGET', key, 't', 'ts')
          local level = cap
          if state[1] then level = math.min(cap, tonumber(state[1]) + (now - tonumber(state[2])) * rate) end
          level = math.min(cap, level + amount - actual)
          redis.call('HSET', key, 't', tostring(level), 'ts', now)
          redis.call('PEXPIRE', key, math.ceil((cap - level) / rate) + 1000)
        elseif redis.call('EXISTS', key) == 1 then
          redis.call('INCRBYFLOAT', key, tostring(actual - tonumber(taken)))
        end
      end
    end
    redis.call('DEL', KEYS[1])
    return 1
    """)

    /// Cooldown: KEYS[1] stays set for ARGV[1] ms, never shortening a longer cooldown already
    /// in place. Returns the cooldown's remaining ms. With ARGV[2] (a channel) and ARGV[3]
    /// (the provider/model), a cooldown set or lengthened is published there.
    static let cooldown = RedisScript("""
    local ms = tonumber(ARGV[1])
    local left = redis.call('PTTL', KEYS[1])
    if left < ms then
      redis.call('SET', KEYS[1], '1', 'PX', ms)
      if ARGV[2] then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
      return ms
    end
    return left
    """)

    /// Provider feedback: what the provider's rate-limit headers say remains (ARGV[1]) until
    /// its window resets (ARGV[2] ms), in KEYS[1]. A later reset (a new window) replaces the
    /// value; within a window the lower value wins (responses arrive out of order). Admission
    /// takes each start's amount from it and waits for the reset when it is short. With ARGV[3]
    /// (a threshold), ARGV[4] (a channel) and ARGV[5] (the provider/model), a value that falls
    /// below the threshold (from at or above it, or from no value) is published there.
    static let window = RedisScript("""
    local remaining, reset = tonumber(ARGV[1]), tonumber(ARGV[2])
    local ttl = redis.call('PTTL', KEYS[1])
    local before = redis.call('GET', KEYS[1])
    local stored = 0
    if ttl < 0 or reset > ttl + 1000 then
      redis.call('SET', KEYS[1], remaining, 'PX', math.max(reset, 1))
      stored = 1
    elseif remaining < tonumber(before or remaining) then
      redis.call('SET', KEYS[1], remaining, 'KEEPTTL')
      stored = 1
    end
    if stored == 1 and ARGV[3] and remaining < tonumber(ARGV[3]) and (not before or tonumber(before) >= tonumber(ARGV[3])) then
      redis.call('PUBLISH', ARGV[4], ARGV[5])
    end
    return stored
    """)

    /// The model gate (``Admission``): whether a provider/model is clear for starts that need
    /// no bucket — no cooldown (KEYS[1]), no failure on record and not open in its breaker
    /// (KEYS[2]), and each provider window (KEYS[3], KEYS[4]) absent or holding at least its
    /// threshold (ARGV[1], ARGV[2]). Returns 1 when clear, else 0. Reads only.
    static let gate = RedisScript("""
    if redis.call('PTTL', KEYS[1]) > 0 then return 0 end
    local b = redis.call('HMGET', KEYS[2], 'fails', 'open_until')
    if tonumber(b[1] or '0') > 0 or tonumber(b[2] or '0') > 0 then return 0 end
    for i = 1, 2 do
      local left = redis.call('GET', KEYS[2 + i])
      if left and tonumber(left) < tonumber(ARGV[i]) then return 0 end
    end
    return 1
    """)
}
