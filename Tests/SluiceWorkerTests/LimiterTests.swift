import Foundation
import Logging
import SluiceRedis
import SluiceTestScope
import SluiceWorker
import Testing

/// The limiter's scripts against the real Redis of the test run: bucket arithmetic, all-or-
/// nothing admission under concurrency, idempotent settlement, lane headroom, cooldowns and
/// budget counters. Each test uses a key prefix of its own (every limiter key has a TTL).
@Suite("Rate limiter (Redis)", .testScope)
struct LimiterTests {
    static func limiter() throws -> RateLimiter {
        let url = try #require(ProcessInfo.processInfo.environment["SLUICE_TEST_REDIS_URL"],
                               "SLUICE_TEST_REDIS_URL is not set: run the tests with scripts/test")
        let scope = try TestScope.required(for: "a Redis client")
        var logger = Logger(label: "sluice.limiter.tests")
        logger.logLevel = .error
        let redis = RedisClient(configuration: try RedisConfiguration(url: url), pool: .init(maxConnections: 16), logger: logger)
        scope.onExit("Redis client") { await redis.shutdown() }
        return RateLimiter(redis: redis, prefix: "test-" + UUID().uuidString.lowercased())
    }

    static func bucket(_ limiter: RateLimiter, _ name: String, perMinute: Double, amount: Double, floor: Double = 0) -> RateLimiter.Bucket {
        .init(key: limiter.key("rl", name), capacity: perMinute, refillPerMillisecond: perMinute / 60_000, amount: amount,
              floorFraction: floor, settle: { Double($0.inputTokens + $0.outputTokens) })
    }

    static func request(_ id: String, _ buckets: [RateLimiter.Bucket], cooldowns: [String] = [],
                        budgets: [RateLimiter.Budget] = []) -> RateLimiter.Request {
        .init(reservation: id, buckets: buckets, cooldowns: cooldowns, budgets: budgets, reservationTTL: .seconds(60))
    }

    @Test func bucketAdmitsUpToCapacityThenSaysWhen() async throws {
        let limiter = try Self.limiter()
        // 60 per minute = one per second; capacity 60.
        let b = Self.bucket(limiter, "m:x:rpm", perMinute: 60, amount: 20)
        for i in 0..<3 {
            #expect(try await limiter.admit(Self.request("r\(i)", [b])) == .admitted(budgetsUsed: []))
        }
        let denied = try await limiter.admit(Self.request("r3", [b]))
        guard case .bucket(let index, let wait) = denied else {
            Issue.record("expected a bucket wait, got \(denied)")
            return
        }
        #expect(index == 0)
        // 20 tokens at 1 per second: about 20 s (less the refill since the first admission).
        #expect(wait > .seconds(15) && wait <= .seconds(20))
        let level = try await limiter.level(of: b.key, capacity: 60, refillPerMillisecond: 0.001)
        #expect(level >= 0 && level < 5)
    }

    /// Waiters of an empty bucket get slots of one schedule spaced at the bucket's rate. When
    /// the limit is raised, the next waiter's slot follows the new rate: it used to be queued
    /// behind the slots handed out at the old rate (a raised limit then woke jobs only for them
    /// to be put back for a minute or more).
    @Test func raisedLimitStartsANewScheduleOfWaits() async throws {
        let limiter = try Self.limiter()
        // 6 per minute: a burst of 6, then one every 10 s.
        let slow = Self.bucket(limiter, "m:x:rpm", perMinute: 6, amount: 1)
        for i in 0..<6 {
            #expect(try await limiter.admit(Self.request("s\(i)", [slow])) == .admitted(budgetsUsed: []))
        }
        var waits: [Duration] = []
        for i in 0..<3 {
            if case .bucket(_, let wait) = try await limiter.admit(Self.request("w\(i)", [slow])) { waits.append(wait) }
        }
        #expect(waits.count == 3)
        #expect(waits.last.map { $0 > .seconds(25) } == true, "\(waits)")
        // Raised to 60 per minute (one a second) on the same key: about a second, not ~40 s.
        let fast = Self.bucket(limiter, "m:x:rpm", perMinute: 60, amount: 1)
        guard case .bucket(_, let first) = try await limiter.admit(Self.request("f0", [fast])) else {
            Issue.record("expected a short wait for the emptied bucket")
            return
        }
        #expect(first <= .seconds(2), "\(first)")
        // The next waiter is spaced at the new rate.
        guard case .bucket(_, let second) = try await limiter.admit(Self.request("f1", [fast])) else {
            Issue.record("expected the second waiter to wait too")
            return
        }
        #expect(second > first && second <= first + .milliseconds(1_100), "\(first) then \(second)")
    }

    /// Leasing (a worker taking slices of a bucket to admit locally) is refused while waiters
    /// hold slots in the bucket's schedule, but not for a schedule made at an old rate: after a
    /// raised limit, slices are leased again once the bucket has refilled, not after the old
    /// rate's last slot.
    @Test func leasingIgnoresTheScheduleOfAnOldRate() async throws {
        let limiter = try Self.limiter()
        let slow = Self.bucket(limiter, "m:lease:rpm", perMinute: 6, amount: 1)
        for i in 0..<6 {
            #expect(try await limiter.admit(Self.request("s\(i)", [slow])) == .admitted(budgetsUsed: []))
        }
        for i in 0..<3 {
            guard case .bucket = try await limiter.admit(Self.request("w\(i)", [slow])) else {
                Issue.record("expected waiter \(i) to wait")
                return
            }
        }
        // At the old rate nothing is leased: the bucket is empty and waiters hold its next slots.
        try await Task.sleep(for: .milliseconds(300))
        let item = { (bucket: RateLimiter.Bucket) in RateLimiter.LeaseItem(bucket: bucket, slice: 1, giveBack: 0, floorFraction: 0) }
        #expect(try await limiter.lease([item(slow)], checks: nil) == [0])
        // Raised to 6,000 per minute (100 a second): refilled past one request within the
        // 300 ms above, so a slice is granted although the old schedule runs ~30 s out.
        let fast = Self.bucket(limiter, "m:lease:rpm", perMinute: 6000, amount: 1)
        #expect(try await limiter.lease([item(fast)], checks: nil) == [1])
    }

    @Test func concurrentAdmissionsTakeExactlyWhatFits() async throws {
        let limiter = try Self.limiter()
        // 1,000 tokens per minute, 100 callers of 30 tokens: 33 fit (the refill during the test
        // adds well under one more).
        let b = Self.bucket(limiter, "t:acme:tpm", perMinute: 1000, amount: 30)
        let admitted = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<100 {
                group.addTask {
                    if case .admitted = try await limiter.admit(Self.request("c\(i)", [b])) { return true }
                    return false
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(admitted == 33 || admitted == 34)
    }

    @Test func allOrNothingAcrossBuckets() async throws {
        let limiter = try Self.limiter()
        // The roomy bucket's take (half of it) dwarfs what it refills while the test runs, so
        // the check below holds however slow the machine is (a stall of 30 s would be needed
        // to hide a wrong charge).
        let roomy = Self.bucket(limiter, "m:a:tpm", perMinute: 100_000, amount: 50_000)
        let tight = Self.bucket(limiter, "t:b:tpm", perMinute: 150, amount: 100)
        let started = ContinuousClock.now
        #expect(try await limiter.admit(Self.request("a1", [roomy, tight])) == .admitted(budgetsUsed: []))
        let second = try await limiter.admit(Self.request("a2", [roomy, tight]))
        guard case .bucket(let index, _) = second else {
            Issue.record("expected the tight bucket to refuse, got \(second)")
            return
        }
        #expect(index == 1)
        // The roomy bucket was not charged for the refused start.
        let level = try await limiter.level(of: roomy.key, capacity: 100_000, refillPerMillisecond: 100_000 / 60_000)
        let elapsed = ContinuousClock.now - started
        let refilled = (Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15) * 100_000 / 60_000
        #expect(level >= 49_999 && level <= 50_000 + refilled + 1, "level \(level) after \(elapsed)")
    }

    @Test func settlementRefundsOnceAndIsIdempotent() async throws {
        let limiter = try Self.limiter()
        let b = Self.bucket(limiter, "m:s:tpm", perMinute: 6_000, amount: 1_000)
        let request = Self.request("s1", [b])
        #expect(try await limiter.admit(request) == .admitted(budgetsUsed: []))
        let rate = 6_000.0 / 60_000
        let afterAdmit = try await limiter.level(of: b.key, capacity: 6_000, refillPerMillisecond: rate)
        #expect(afterAdmit < 5_100)
        // Used 200 of the 1,000 reserved: 800 come back, once.
        #expect(try await limiter.settle(request, usage: .init(inputTokens: 150, outputTokens: 50, costUSD: 0)))
        #expect(try await limiter.settle(request, usage: .init(inputTokens: 150, outputTokens: 50, costUSD: 0)) == false)
        let afterSettle = try await limiter.level(of: b.key, capacity: 6_000, refillPerMillisecond: rate)
        #expect(afterSettle >= 5_790 && afterSettle < 5_900)
        // A repeated admission of the same attempt takes nothing more.
        let again = Self.request("s2", [b])
        #expect(try await limiter.admit(again) == .admitted(budgetsUsed: []))
        let once = try await limiter.level(of: b.key, capacity: 6_000, refillPerMillisecond: rate)
        #expect(try await limiter.admit(again) == .admitted(budgetsUsed: []))
        let twice = try await limiter.level(of: b.key, capacity: 6_000, refillPerMillisecond: rate)
        #expect(twice >= once - 1 && twice <= once + 5)
    }

    @Test func lowerLanesLeaveHeadroom() async throws {
        let limiter = try Self.limiter()
        // A bucket of 100; batch may not use the last 30 %, interactive everything.
        let key = "m:h:rpm"
        // Refills one per hour, so a slow machine's loop does not add any.
        func slow(_ floor: Double) -> RateLimiter.Bucket {
            .init(key: limiter.key("rl", key), capacity: 100, refillPerMillisecond: 1.0 / 3_600_000, amount: 1, floorFraction: floor,
                  settle: { _ in 1 })
        }
        var admittedBatch = 0
        for i in 0..<100 {
            let b = slow(0.3)
            if case .admitted = try await limiter.admit(Self.request("b\(i)", [b])) { admittedBatch += 1 } else { break }
        }
        #expect(admittedBatch == 70)
        var admittedInteractive = 0
        for i in 0..<100 {
            let b = slow(0)
            if case .admitted = try await limiter.admit(Self.request("i\(i)", [b])) { admittedInteractive += 1 } else { break }
        }
        #expect(admittedInteractive == 30)
    }

    @Test func cooldownIsHonouredAndNeverShortened() async throws {
        let limiter = try Self.limiter()
        let cool = limiter.key("cool", "openai/gpt-4o")
        try await limiter.cooldown(cool, for: .seconds(30))
        try await limiter.cooldown(cool, for: .seconds(1))
        let left = try #require(try await limiter.cooldownRemaining(cool))
        #expect(left > .seconds(25))
        let b = Self.bucket(limiter, "m:c:rpm", perMinute: 100, amount: 1)
        let decision = try await limiter.admit(Self.request("k1", [b], cooldowns: [cool]))
        guard case .cooldown(_, let wait) = decision else {
            Issue.record("expected a cooldown, got \(decision)")
            return
        }
        #expect(wait > .seconds(25))
    }

    @Test func budgetCounterStartsFromRecordedSpendAndStopsAtTheLimit() async throws {
        let limiter = try Self.limiter()
        func budget(_ amount: Double) -> RateLimiter.Budget {
            .init(key: limiter.key("budget", "acme", "d:2026-12-05", "tok"), limit: 1_000, amount: amount, seed: 900,
                  ttlSeconds: 60, countsTokens: true)
        }
        // 900 already recorded: one 300-token envelope still starts (the limit is passed by at
        // most one envelope), the next is refused.
        #expect(try await limiter.admit(Self.request("g1", [], budgets: [budget(300)])) == .admitted(budgetsUsed: [1_200]))
        let refused = try await limiter.admit(Self.request("g2", [], budgets: [budget(300)]))
        guard case .budget(let index, _) = refused else {
            Issue.record("expected the budget to refuse, got \(refused)")
            return
        }
        #expect(index == 0)
        // The call used 50 tokens: the counter settles to 950 and the budget admits again.
        #expect(try await limiter.settle(Self.request("g1", [], budgets: [budget(300)]),
                                         usage: .init(inputTokens: 40, outputTokens: 10, costUSD: 0)))
        #expect(try await limiter.admit(Self.request("g3", [], budgets: [budget(10)])) == .admitted(budgetsUsed: [960]))
    }

    @Test func breakerOpensProbesOnceAndCloses() async throws {
        let limiter = try Self.limiter()
        let breaker = limiter.key("brk", "openai/gpt-4o")
        var policy = RateLimiter.BreakerPolicy()
        policy.consecutiveFailures = 3
        policy.openFor = .seconds(1)
        func start(_ id: String) async throws -> RateLimiter.Decision {
            try await limiter.admit(.init(reservation: id, buckets: [], cooldowns: [], budgets: [], reservationTTL: .seconds(60),
                                          breaker: breaker, probeTimeout: .seconds(30)))
        }
        // Two failures and a success: the count of consecutive failures starts over.
        for success in [false, false, true, false, false] {
            #expect(try await limiter.recordBreaker(breaker, success: success, policy: policy) == false)
        }
        #expect(try await start("a") == .admitted(budgetsUsed: [], probe: false, breakerFailures: 2))
        // The third consecutive failure opens it: starts are refused for its open time.
        #expect(try await limiter.recordBreaker(breaker, success: false, policy: policy))
        guard case .breaker(let wait) = try await start("b") else {
            Issue.record("expected the open breaker to refuse")
            return
        }
        #expect(wait > .zero && wait <= .seconds(1))
        try await Task.sleep(for: .milliseconds(1100))
        // Half-open: exactly one probe goes through; the next start waits for it.
        #expect(try await start("probe") == .admitted(budgetsUsed: [], probe: true, breakerFailures: 3))
        guard case .breaker = try await start("c") else {
            Issue.record("expected a second start to wait for the probe")
            return
        }
        // The probe fails: open again.
        #expect(try await limiter.recordBreaker(breaker, success: false, policy: policy))
        guard case .breaker = try await start("d") else {
            Issue.record("expected the re-opened breaker to refuse")
            return
        }
        try await Task.sleep(for: .milliseconds(1100))
        #expect(try await start("probe2") == .admitted(budgetsUsed: [], probe: true, breakerFailures: 4))
        // The probe succeeds: closed, every start goes through.
        #expect(try await limiter.recordBreaker(breaker, success: true, policy: policy) == false)
        #expect(try await start("e") == .admitted(budgetsUsed: [], probe: false, breakerFailures: 0))
        #expect(try await start("f") == .admitted(budgetsUsed: [], probe: false, breakerFailures: 0))
    }

    @Test func breakerOpensOnTheFailureRatio() async throws {
        let limiter = try Self.limiter()
        let breaker = limiter.key("brk", "anthropic/claude")
        var policy = RateLimiter.BreakerPolicy()
        policy.consecutiveFailures = 100
        policy.failureRatio = 0.5
        policy.minimumCalls = 10
        // Alternating failures and successes: never 2 in a row, but half of all calls.
        var opened = false
        for i in 0..<10 {
            opened = try await limiter.recordBreaker(breaker, success: i % 2 == 0, policy: policy)
        }
        #expect(opened)
        #expect(try await limiter.breakerState(breaker).openFor != nil)
    }

    /// Hundreds of calls in flight, all admitted while the breaker had no failure on record,
    /// and a few of them fail: the successes settled between the failures reset the consecutive
    /// count and fill the ratio's denominator, so 8 failures among 120 calls (never 5 in a row,
    /// 7 %) do not open it. (Counting only successes admitted after a failure — as the worker
    /// did before — opened it after the fifth failure, for 30 s.)
    @Test func scatteredFailuresAmongSettledSuccessesDoNotOpenTheBreaker() async throws {
        let limiter = try Self.limiter()
        let breaker = limiter.key("brk", "openai/gpt-4o-mini")
        let policy = RateLimiter.BreakerPolicy()   // 5 in a row, or 50 % of at least 20 calls
        let b = Self.bucket(limiter, "m:busy:tpm", perMinute: 1_000_000, amount: 100)
        let requests = (0..<120).map { Self.request("busy-\($0)", [b]) }
        for request in requests { #expect(try await limiter.admit(request) == .admitted(budgetsUsed: [])) }
        var failures = 0
        for (i, request) in requests.enumerated() {
            if i % 15 == 7 {
                failures += 1
                #expect(try await limiter.recordBreaker(breaker, success: false, policy: policy) == false)
                #expect(try await limiter.settle(request, usage: .nothing))
            } else {
                #expect(try await limiter.settle(request, usage: .init(inputTokens: 50, outputTokens: 50, costUSD: 0),
                                                 breakerSuccess: (breaker, policy)))
            }
        }
        #expect(failures == 8)
        let state = try await limiter.breakerState(breaker)
        #expect(state.openFor == nil)
        #expect(state.failures == 0)
        // Five failures in a row still open it.
        var opened = false
        for _ in 0..<5 { opened = try await limiter.recordBreaker(breaker, success: false, policy: policy) }
        #expect(opened)
    }

    @Test func providerWindowFromHeadersStopsStartsUntilItResets() async throws {
        let limiter = try Self.limiter()
        let tokens = limiter.key("pw", "openai/gpt-4o", "tok")
        // The provider said: 1,000 tokens left, resetting in 1.5 s. A later answer from the same
        // window with more left (out of order) does not raise it; a lower one does.
        try await limiter.providerWindow(tokens, remaining: 1_000, reset: .milliseconds(1500))
        try await limiter.providerWindow(tokens, remaining: 5_000, reset: .milliseconds(1400))
        try await limiter.providerWindow(tokens, remaining: 900, reset: .milliseconds(1400))
        func start(_ id: String, _ amount: Double) async throws -> RateLimiter.Decision {
            var request = RateLimiter.Request(reservation: id, buckets: [], cooldowns: [], budgets: [], reservationTTL: .seconds(60))
            request.windows = [(tokens, amount)]
            return try await limiter.admit(request)
        }
        #expect(try await start("a", 600) == .admitted(budgetsUsed: []))
        guard case .cooldown(-1, let wait) = try await start("b", 600) else {
            Issue.record("expected the used-up window to refuse")
            return
        }
        #expect(wait > .zero && wait <= .milliseconds(1500))
        #expect(try await start("c", 300) == .admitted(budgetsUsed: []))
        // After the reset the window is gone: starts go through again.
        try await Task.sleep(for: .milliseconds(1600))
        #expect(try await start("d", 600) == .admitted(budgetsUsed: []))
    }

    @Test func refusedStartsGetSuccessiveSlotsOfTheSharedSchedule() async throws {
        let limiter = try Self.limiter()
        // 10 per minute: one refill every 6 s. Empty it, then three refused starts (from any
        // worker: the schedule is in Redis) get slots about 6, 12 and 18 s out.
        let b = Self.bucket(limiter, "m:sched:rpm", perMinute: 10, amount: 1)
        for i in 0..<10 { #expect(try await limiter.admit(Self.request("s\(i)", [b])) == .admitted(budgetsUsed: [])) }
        var waits: [Duration] = []
        for i in 0..<3 {
            guard case .bucket(_, let wait) = try await limiter.admit(Self.request("w\(i)", [b])) else {
                Issue.record("expected a refused start")
                return
            }
            waits.append(wait)
        }
        #expect(waits[0] > .seconds(4) && waits[0] <= .seconds(6))
        #expect(waits[1] - waits[0] > .milliseconds(5_500) && waits[1] - waits[0] < .milliseconds(6_500))
        #expect(waits[2] - waits[1] > .milliseconds(5_500) && waits[2] - waits[1] < .milliseconds(6_500))
    }
}
