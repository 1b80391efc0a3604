import SluiceSupport

/// The capacity leases one worker process holds (``AdmissionConfiguration/Leasing``).
///
/// A lease is a slice taken from a shared bucket in Redis by ``RateLimiter/lease(_:checks:)``:
/// the bucket's level already counts it as used, so starts admitted from it locally can never
/// exceed the bucket, whatever the number of workers. Slices are granted only while the bucket
/// stays at least `floorFraction` full after them; near the limit every start goes through the
/// admission script, one by one, exactly as without leasing. What a slice does not use, and the
/// difference between a start's reservation and what its call used, go back to the bucket when
/// the lease ends (`duration`), when the limits change, on a 429 or a counted failure of its
/// model, and when the worker stops. A lease lost with its process is capacity used: it refills
/// at the bucket's rate like any other.
final class LeaseBook: Sendable {
    struct Lease {
        var bucket: RateLimiter.Bucket
        var remaining: Double
        var granted: Double
        /// What starts took from it in all (refunds of settled starts not deducted): the rate
        /// the next slice is sized by. Sizing by net use (granted − remaining) undercounted a
        /// bucket whose starts give most back at settlement (a TPM bucket reserving
        /// `max_tokens`): its slices stayed at the minimum while hundreds of calls held their
        /// reservations, and half the starts fell back to the admission script.
        var taken: Double = 0
        var grantedAt: ContinuousClock.Instant
        var expires: ContinuousClock.Instant
    }

    private struct State {
        var leases: [String: Lease] = [:]
        /// Capacity to give back (ended leases, refunds of settled starts), per bucket key.
        var credit: [String: (bucket: RateLimiter.Bucket, amount: Double)] = [:]
        /// Buckets whose lease call is under way (other starts wait for its answer).
        var renewing: Set<String> = []
        /// Buckets dropped while their lease call was under way: its slice must not be used
        /// (a 429 or a breaker failure came in meanwhile); it goes back with the next call.
        var revoked: Set<String> = []
        /// Buckets that refused a slice: decided per job until then.
        var refusedUntil: [String: ContinuousClock.Instant] = [:]
        /// The slice to ask next, from the rate the last lease was used at.
        var nextSlice: [String: Double] = [:]
        /// Starts waiting for the lease call of a bucket (its key) under way to answer.
        var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    }

    /// What admission does with a start.
    enum Plan {
        /// Taken from this worker's leases.
        case taken
        /// Ask Redis for these slices (giving back what ended leases left), then plan again.
        case renew([RateLimiter.LeaseItem])
        /// Decide it in Redis (a bucket is near its limit or too small to lease).
        case perJob
        /// Another start is renewing a lease this one needs (this bucket's key): wait for that
        /// answer (``waitForAnswer(_:)``), then plan again.
        case wait(String)
    }

    let configuration: AdmissionConfiguration.Leasing
    /// The fraction of a bucket that must remain after a slice: the leasing floor, never below
    /// the largest lane reserve.
    let floor: Double
    private let state = Locked(State())

    init(configuration: AdmissionConfiguration.Leasing, laneReserve: [Double]) {
        self.configuration = configuration
        floor = max(configuration.floorFraction, laneReserve.max() ?? 0)
    }

    private static func same(_ a: RateLimiter.Bucket, _ b: RateLimiter.Bucket) -> Bool {
        a.capacity == b.capacity && a.refillPerMillisecond == b.refillPerMillisecond && a.capKey == b.capKey
    }

    /// Takes `buckets`' amounts from live leases (all or nothing), or says which slices to ask
    /// for, or that the start must be decided in Redis.
    func plan(_ buckets: [RateLimiter.Bucket]) -> Plan {
        let now = ContinuousClock.now
        return state.withLock { s -> Plan in
            var short: [RateLimiter.Bucket] = []
            for b in buckets {
                if let l = s.leases[b.key], l.expires > now, Self.same(l.bucket, b), l.remaining >= b.amount { continue }
                short.append(b)
            }
            if short.isEmpty {
                for b in buckets {
                    s.leases[b.key]?.remaining -= b.amount
                    s.leases[b.key]?.taken += b.amount
                }
                return .taken
            }
            for b in short {
                if let until = s.refusedUntil[b.key], until > now { return .perJob }
                if b.capacity * configuration.maxSliceFraction < Double(configuration.minimumStartsPerSlice) * b.amount { return .perJob }
            }
            if let busy = short.first(where: { s.renewing.contains($0.key) }) { return .wait(busy.key) }
            var items: [RateLimiter.LeaseItem] = []
            for b in short {
                var back = 0.0
                var next = s.nextSlice[b.key] ?? 0
                if let old = s.leases.removeValue(forKey: b.key) {
                    back += old.remaining
                    next = Self.demand(old, now: now, duration: configuration.duration)
                }
                if let c = s.credit.removeValue(forKey: b.key) { back += c.amount }
                let maxSlice = (b.capacity * configuration.maxSliceFraction).rounded(.down)
                let slice = min(maxSlice, max(next, Double(configuration.minimumStartsPerSlice) * b.amount)).rounded(.up)
                s.renewing.insert(b.key)
                s.refusedUntil[b.key] = nil
                items.append(.init(bucket: b, slice: slice, giveBack: back, floorFraction: floor))
            }
            return .renew(items)
        }
    }

    /// What a lease should be to last its whole duration at the rate `old` was used (twice
    /// that: a slice that runs out early costs a round trip, one that is too large only
    /// holds capacity back until it ends).
    private static func demand(_ old: Lease, now: ContinuousClock.Instant, duration: Duration) -> Double {
        let used = max(old.taken, old.granted - old.remaining)
        let elapsed = max((min(now, old.expires) - old.grantedAt).seconds, 0.001)
        return used / elapsed * duration.seconds * 2
    }

    /// The answer to a ``Plan/renew(_:)``: slices granted (0: refused), or nil when Redis
    /// failed (what was to go back is kept to give back later).
    func complete(_ items: [RateLimiter.LeaseItem], granted: [Double]?) {
        let now = ContinuousClock.now
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            var waiters: [CheckedContinuation<Void, Never>] = []
            for (index, item) in items.enumerated() {
                let key = item.bucket.key
                s.renewing.remove(key)
                guard let granted else {
                    s.revoked.remove(key)
                    s.credit[key] = (item.bucket, (s.credit[key]?.amount ?? 0) + item.giveBack)
                    continue
                }
                let slice = index < granted.count ? granted[index] : 0
                if s.revoked.remove(key) != nil {
                    if slice > 0 { s.credit[key] = (item.bucket, (s.credit[key]?.amount ?? 0) + slice) }
                } else if slice > 0 {
                    s.leases[key] = Lease(bucket: item.bucket, remaining: slice, granted: slice, grantedAt: now,
                                          expires: now + configuration.duration)
                } else if item.slice > 0 {
                    // Refused: decided per job for a while. (A give-back of the sweep asks for
                    // nothing; its 0 is no refusal — counting it as one sent every bucket whose
                    // lease the sweep ended to the admission script for a second.)
                    s.refusedUntil[key] = now + configuration.duration
                }
            }
            for item in items { waiters += s.waiters.removeValue(forKey: item.bucket.key) ?? [] }
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the lease call under way for bucket `key` answered (at once if none is).
    func waitForAnswer(_ key: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                guard s.renewing.contains(key) else { return true }
                s.waiters[key, default: []].append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// A leased start settled: `amount` (its reservation minus what it used; negative when
    /// it used more) goes back through the live lease, or with the next lease call.
    func credit(_ bucket: RateLimiter.Bucket, _ amount: Double) {
        guard amount != 0 else { return }
        let now = ContinuousClock.now
        state.withLock { s in
            if let l = s.leases[bucket.key], l.expires > now, Self.same(l.bucket, bucket) {
                s.leases[bucket.key]?.remaining += amount
            } else {
                s.credit[bucket.key] = (bucket, (s.credit[bucket.key]?.amount ?? 0) + amount)
            }
        }
    }

    /// Ends the leases of these buckets (a 429, a counted failure): their rest goes back with
    /// the next sweep, and their starts are decided per job for one lease duration.
    func drop(_ keys: [String]) {
        let now = ContinuousClock.now
        state.withLock { s in
            for key in keys {
                if let l = s.leases.removeValue(forKey: key) {
                    s.credit[key] = (l.bucket, (s.credit[key]?.amount ?? 0) + l.remaining)
                }
                if s.renewing.contains(key) { s.revoked.insert(key) }
                s.refusedUntil[key] = now + configuration.duration
            }
        }
    }

    /// Ends every lease (the limits changed, Redis failed, the worker stops).
    func dropAll() {
        state.withLock { s in
            for (key, l) in s.leases {
                s.credit[key] = (l.bucket, (s.credit[key]?.amount ?? 0) + l.remaining)
            }
            s.leases = [:]
            s.revoked.formUnion(s.renewing)
        }
    }

    /// Ends the leases whose time is up and returns everything to give back (as items that
    /// ask for no slice); pass them to ``complete(_:granted:)`` after the call.
    func sweep() -> [RateLimiter.LeaseItem] {
        let now = ContinuousClock.now
        return state.withLock { s -> [RateLimiter.LeaseItem] in
            for (key, l) in s.leases where l.expires <= now && !s.renewing.contains(key) {
                s.leases[key] = nil
                s.nextSlice[key] = Self.demand(l, now: now, duration: configuration.duration)
                s.credit[key] = (l.bucket, (s.credit[key]?.amount ?? 0) + l.remaining)
            }
            s.refusedUntil = s.refusedUntil.filter { $0.value > now }
            var items: [RateLimiter.LeaseItem] = []
            for (key, c) in s.credit where !s.renewing.contains(key) {
                s.credit[key] = nil
                if c.amount == 0 { continue }
                s.renewing.insert(key)
                items.append(.init(bucket: c.bucket, slice: 0, giveBack: c.amount, floorFraction: floor))
            }
            return items
        }
    }

    /// Capacity this worker holds in live leases, per bucket key (for tests and `limits show`).
    var held: [String: Double] {
        state.withLock { s in s.leases.mapValues(\.remaining) }
    }

    /// Capacity waiting to go back, per bucket key.
    var pendingCredit: [String: Double] {
        state.withLock { s in s.credit.mapValues(\.amount) }
    }
}
