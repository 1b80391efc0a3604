import Foundation
import Logging
import Sluice
import SluicePostgres
import SluiceProviders
import SluiceRedis
import SluiceTestScope
import SluiceTestSupport
import SluiceWorker
import Testing

/// Capacity leasing (``AdmissionConfiguration/Leasing``), provider-advertised caps and the
/// claim's skip of limited models, against the real Redis of the test run and a PostgreSQL
/// database of the test's own. Jobs are claimed through the store and admitted directly, so
/// each admission is one decision the test can count.
@Suite("Capacity leasing, advertised caps, claim skip", .workerDatabase)
struct LeasingTests {
    /// Enqueues `count` echo jobs and claims them all (as a worker would before admitting).
    static func claimed(_ h: WorkerHarness, _ count: Int, lane: Lane = .high, maxOutput: Int = 64) async throws -> [Job] {
        let specs = (0..<count).map { i -> JobSpec in
            var spec = echo("acme", "leasing \(i)", lane: lane)
            spec.maxOutputTokens = maxOutput
            return spec
        }
        for offset in stride(from: 0, to: specs.count, by: 1000) {
            _ = try await h.client.enqueue(batch: Array(specs[offset..<min(offset + 1000, specs.count)]))
        }
        _ = try await h.postgres.query("UPDATE sluice.tenants SET max_concurrency = 100000")
        var jobs: [Job] = []
        while jobs.count < count {
            let batch = try await h.client.store.claim(.init(worker: "w", limit: 1000, lanes: Lane.allCases, tenants: nil, lease: .seconds(600),
                                                             starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
            if batch.isEmpty { break }
            jobs += batch
        }
        #expect(jobs.count == count)
        return jobs
    }

    static func redis(_ h: WorkerHarness) throws -> RedisClient {
        let url = try #require(ProcessInfo.processInfo.environment["SLUICE_TEST_REDIS_URL"])
        let scope = try TestScope.required(for: "a Redis client")
        let client = RedisClient(configuration: try RedisConfiguration(url: url), logger: h.logger)
        scope.onExit("Redis client") { await client.shutdown() }
        return client
    }

    @Test func twoWorkersLeasingOneBucketNeverAdmitBeyondIt() async throws {
        let h = try WorkerHarness.current
        let prefix = "test-" + UUID().uuidString.lowercased()
        // 1,000 requests per minute (16.7 a second refill); slices of up to 50 while the bucket
        // stays half full, then per job down to empty (high lane: no headroom kept).
        _ = try await JobStore(postgres: h.postgres).setModelLimits(provider: "echo", model: "echo", rpm: 1000)
        func configure(_ c: inout AdmissionConfiguration) {
            c.keyPrefix = prefix
            c.leasing.maxSliceFraction = 0.05
            // Slices outlive the test: 1,600 admissions take over a second under load, and
            // expired slices going back to the bucket mid-test would blur the accounting below.
            c.leasing.duration = .seconds(60)
        }
        // Two admissions with their own Redis clients and leases: two worker processes.
        let a = try AdmissionTests.admission(h, configure: configure)
        let b = try AdmissionTests.admission(h, configure: configure)
        let jobs = try await Self.claimed(h, 1_600)
        _ = await a.limits()
        _ = await b.limits()
        let start = ContinuousClock.now
        let verdicts = await withTaskGroup(of: (started: Bool, leased: Bool).self) { group in
            for (index, job) in jobs.enumerated() {
                group.addTask {
                    if case .start(let ticket) = await (index % 2 == 0 ? a : b).admit(job) { return (true, ticket?.leased == true) }
                    return (false, false)
                }
            }
            return await group.reduce(into: [(started: Bool, leased: Bool)]()) { $0.append($1) }
        }
        let elapsed = (ContinuousClock.now - start).components.seconds + 1
        let started = verdicts.filter(\.started).count
        let leased = verdicts.filter(\.leased).count
        // Never beyond the bucket: its size plus what refilled meanwhile (16.7 a second).
        #expect(started <= 1000 + Int(elapsed) * 17, "\(started) starts against a 1,000 bucket in \(elapsed) s")
        // Nothing lost: what did not start is held in the two workers' leases (at most a slice
        // of 50 each), and the leased starts stopped once the bucket was half empty.
        let held = Int((a.leasedCapacity.values.reduce(0, +) + b.leasedCapacity.values.reduce(0, +)).rounded())
        #expect(started + held >= 1000 && held <= 100, "\(started) starts, \(held) held in leases")
        #expect(leased >= 250 && leased <= 500 && leased < started, "\(leased) of \(started) starts from leases")
        // What the leases still hold goes back: the bucket then counts exactly the starts.
        await a.returnLeases(all: true)
        await b.returnLeases(all: true)
        #expect(a.leasedCapacity.isEmpty && b.leasedCapacity.isEmpty)
        let limiter = RateLimiter(redis: try Self.redis(h), prefix: prefix)
        let level = try await limiter.level(of: limiter.key("rl", "m:echo/echo", "rpm"), capacity: 1000, refillPerMillisecond: 1000 / 60_000)
        let refilled = Double((ContinuousClock.now - start).components.seconds + 1) * 16.7
        #expect(level >= 1000 - Double(started) - 1 && level <= 1000 - Double(started) + refilled + 1,
                "level \(level) after \(started) starts")
    }

    @Test func unusedSliceAndRefundsComeBack() async throws {
        let h = try WorkerHarness.current
        // 120 a minute (2 a second): slices of 30 (minimum 30 starts) up to 60.
        _ = try await JobStore(postgres: h.postgres).setModelLimits(provider: "echo", model: "echo", rpm: 120)
        let prefix = "test-" + UUID().uuidString.lowercased()
        let admission = try AdmissionTests.admission(h) { c in
            c.keyPrefix = prefix
            c.leasing.maxSliceFraction = 0.5
            c.leasing.minimumStartsPerSlice = 30
        }
        let limiter = RateLimiter(redis: try Self.redis(h), prefix: prefix)
        let key = limiter.key("rl", "m:echo/echo", "rpm")
        let job = try #require(try await Self.claimed(h, 1).first)
        guard case .start(let ticket) = await admission.admit(job), let ticket else {
            Issue.record("the job did not start")
            return
        }
        #expect(ticket.leased)
        // The slice is taken from the shared bucket; the worker holds the 29 it did not use.
        #expect(admission.leasedCapacity[key] == 29)
        await admission.finish(ticket, provider: "echo", model: "echo", succeeded: true, errorClass: nil,
                               usage: Usage(inputTokens: 5, outputTokens: 5), costUSD: 0, retryAfter: nil, rateLimits: nil)
        let before = try await limiter.level(of: key, capacity: 120, refillPerMillisecond: 120 / 60_000)
        #expect(before <= 95, "level \(before) with a slice of 30 out")
        await admission.returnLeases(all: true)
        let after = try await limiter.level(of: key, capacity: 120, refillPerMillisecond: 120 / 60_000)
        // The 29 came back (the refill in between only adds).
        #expect(after >= min(120, before + 29), "level \(before) before giving back, \(after) after")
        #expect(admission.leasedCapacity.isEmpty)
    }

    @Test func noLeaseWhileTheModelCoolsDown() async throws {
        let h = try WorkerHarness.current
        _ = try await JobStore(postgres: h.postgres).setModelLimits(provider: "echo", model: "echo", rpm: 100_000, tpm: 100_000_000)
        let prefix = "test-" + UUID().uuidString.lowercased()
        let admission = try AdmissionTests.admission(h) { $0.keyPrefix = prefix }
        let limiter = RateLimiter(redis: try Self.redis(h), prefix: prefix)
        // Another worker saw a 429: the cooldown is in Redis only.
        try await limiter.cooldown(limiter.key("cool", "echo/echo"), for: Duration.seconds(30))
        let job = try #require(try await Self.claimed(h, 1).first)
        guard case .wait(_, let limit) = await admission.admit(job) else {
            Issue.record("a job started during a cooldown")
            return
        }
        #expect(limit == "cooldown")
        #expect(admission.leasedCapacity.isEmpty)
        // The claim now leaves the model out.
        #expect(admission.skipModels == ["echo/echo"])
    }

    @Test func advertisedLowerLimitCapsTheBucketForEveryWorker() async throws {
        let h = try WorkerHarness.current
        _ = try await JobStore(postgres: h.postgres).setModelLimits(provider: "echo", model: "echo", rpm: 50)
        let prefix = "test-" + UUID().uuidString.lowercased()
        let admission = try AdmissionTests.admission(h) { $0.keyPrefix = prefix }
        let redis = try Self.redis(h)
        let limiter = RateLimiter(redis: redis, prefix: prefix)
        let jobs = try await Self.claimed(h, 60)
        guard case .start(let ticket) = await admission.admit(jobs[0]), let ticket else {
            Issue.record("the first job did not start")
            return
        }
        // The provider says 20 a minute.
        await admission.finish(ticket, provider: "echo", model: "echo", succeeded: true, errorClass: nil,
                               usage: Usage(inputTokens: 5, outputTokens: 5), costUSD: 0, retryAfter: nil,
                               rateLimits: RateLimitSnapshot(requestsLimit: 20, requestsRemaining: 19))
        #expect(try await redis.command(["GET", limiter.key("cap", "echo/echo", "rpm")]).string == "20")
        // Another worker admits against the capped bucket: cut to 20, so 20 more fit.
        let other = try AdmissionTests.admission(h) { $0.keyPrefix = prefix }
        var started = 1
        let capped = ContinuousClock.now
        for job in jobs.dropFirst() {
            if case .start = await other.admit(job) { started += 1 }
        }
        // 20 a minute refills one every 3 s: under load the admissions take seconds.
        let refills = Int((ContinuousClock.now - capped).components.seconds) / 3
        #expect(started >= 21 && started <= 22 + refills, "\(started) starts against an advertised 20 a minute")
        // A figure at or above the configured limit removes the cap.
        await admission.finish(ticket, provider: "echo", model: "echo", succeeded: true, errorClass: nil,
                               usage: nil, costUSD: 0, retryAfter: nil, rateLimits: RateLimitSnapshot(requestsLimit: 500))
        #expect(try await redis.command(["EXISTS", limiter.key("cap", "echo/echo", "rpm")]).int == 0)
    }

    @Test func claimLeavesSkippedModelsOut() async throws {
        let h = try WorkerHarness.current
        try await h.client.register(providers: [RegisteredProvider(name: "openai", kind: .openai, models: ["gpt-4o-mini", "gpt-4o"])])
        let request = JSONDocument(#"{"messages":[{"role":"user","content":"hi"}]}"#)
        // The cooling model's jobs are older: without the skip they would be claimed first.
        _ = try await h.client.enqueue(batch: (0..<30).map { _ in
            JobSpec(tenant: "acme", provider: "openai", model: "gpt-4o-mini", request: request)
        })
        _ = try await h.client.enqueue(batch: (0..<5).map { _ in JobSpec(tenant: "acme", provider: "openai", model: "gpt-4o", request: request) })
        _ = try await h.postgres.query("UPDATE sluice.tenants SET max_concurrency = 1000")
        let jobs = try await h.client.store.claim(.init(worker: "w", limit: 10, lanes: Lane.allCases, tenants: nil, lease: .seconds(60),
                                                        starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256,
                                                        skipModels: ["openai/gpt-4o-mini"]))
        #expect(jobs.count == 5)
        #expect(jobs.allSatisfy { $0.model == "gpt-4o" })
        // Without the skip the claim takes them again.
        let rest = try await h.client.store.claim(.init(worker: "w", limit: 50, lanes: Lane.allCases, tenants: nil, lease: .seconds(60),
                                                        starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
        #expect(rest.count == 30)
    }
}
