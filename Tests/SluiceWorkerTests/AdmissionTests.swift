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

/// Rate limits, kill switches and budgets enforced at start time by in-process workers, with
/// the echo provider, a real PostgreSQL database of the test's own and the real Redis of the
/// test run (a key prefix of the test's own).
@Suite("Admission: limits, kill switches, budgets", .workerDatabase)
struct AdmissionTests {
    static func admission(_ h: WorkerHarness, redis: Bool = true,
                          configure: (inout AdmissionConfiguration) -> Void = { _ in }) throws -> Admission {
        var configuration = AdmissionConfiguration()
        configuration.keyPrefix = "test-" + UUID().uuidString.lowercased()
        configuration.budgetSettleRetry = .milliseconds(300)
        configure(&configuration)
        var limiter: RateLimiter?
        if redis {
            let url = try #require(ProcessInfo.processInfo.environment["SLUICE_TEST_REDIS_URL"])
            let scope = try TestScope.required(for: "a Redis client")
            let client = RedisClient(configuration: try RedisConfiguration(url: url), logger: h.logger)
            scope.onExit("Redis client") { await client.shutdown() }
            limiter = RateLimiter(redis: client, prefix: configuration.keyPrefix)
        }
        let prices = try PriceTable(logger: h.logger)
        return try Admission(configuration: configuration, limiter: limiter, store: JobStore(postgres: h.postgres),
                             cost: { provider, model, usage in prices.cost(providers: [provider], model: model, usage: usage) },
                             logger: h.logger)
    }

    static func worker(_ h: WorkerHarness, _ admission: Admission) throws -> Worker {
        let prices = try PriceTable(logger: h.logger)
        let echo = EchoProvider(priceTable: prices)
        return try Worker(configuration: WorkerHarness.testConfiguration(), postgres: h.postgres,
                          providers: { $0 == "echo" ? echo : nil }, logger: h.logger, admission: admission)
    }

    /// Polls `condition` every 100 ms for at most `timeout` (seconds: it only catches a hang).
    static func eventually(_ what: String, timeout: Duration = .seconds(20),
                           _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for: \(what)")
    }

    @Test func rateLimitedJobsWaitWithoutUsingAttemptsAndRunWhenTheLimitIsRaised() async throws {
        let h = try WorkerHarness.current
        let store = JobStore(postgres: h.postgres)
        // 6 requests per minute: a burst of 6, then one every 10 s (high lane: no headroom kept).
        _ = try await store.setModelLimits(provider: "echo", model: "echo", rpm: 6)
        _ = try await h.client.enqueue(batch: (0..<15).map { echo("acme", "job \($0)", lane: .high) })
        let admission = try Self.admission(h)
        try await h.withWorkers([try Self.worker(h, admission)]) {
            try await Self.eventually("6 jobs succeed and the other 9 wait, with a reason") {
                let done = try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'succeeded'")
                let waiting = try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'queued' AND wait_reason LIKE 'rate limit:%'")
                return done >= 6 && waiting >= 8
            }
            // One snapshot: jobs that succeeded, queued jobs that used an attempt, attempt rows.
            let row = try await h.postgres.query("""
                SELECT count(*) FILTER (WHERE state = 'succeeded')::int, count(*) FILTER (WHERE state = 'queued' AND attempt <> 0)::int,
                       (SELECT count(*) FROM sluice.attempts)::int
                  FROM sluice.jobs
                """).rows[0]
            let succeeded = try row.decode(Int.self, at: 0)
            #expect(succeeded >= 6 && succeeded <= 8)
            // Waiting consumed no attempt and wrote no attempt row.
            #expect(try row.decode(Int.self, at: 1) == 0)
            #expect(try row.decode(Int.self, at: 2) == succeeded)
            let waiting = try #require(try await h.client.list(tenant: "acme", state: .queued, limit: 1).first)
            #expect(waiting.waitReason?.contains("echo/echo rpm bucket") == true, "\(waiting.waitReason ?? "nil")")
            // Raising the limit applies at once: the waiting jobs run now, not at their slot.
            _ = try await store.setModelLimits(provider: "echo", model: "echo", rpm: 6_000)
            try await Self.eventually("all 15 succeed") {
                try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'succeeded'") == 15
            }
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE attempt <> 1") == 0)
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE wait_reason IS NOT NULL") == 0)
    }

    @Test func pausedModelStartsNothingUntilResumed() async throws {
        let h = try WorkerHarness.current
        let store = JobStore(postgres: h.postgres)
        _ = try await store.setModelLimits(provider: "echo", model: "echo", paused: true)
        let ids = try await h.client.enqueue(batch: (0..<3).map { echo("acme", "paused \($0)") }).map(\.id)
        try await h.withWorkers([try Self.worker(h, try Self.admission(h, redis: false))]) {
            try await Self.eventually("the jobs wait for the paused model") {
                try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'queued' AND wait_reason LIKE '%paused%'") == 3
            }
            #expect(try await h.count("SELECT count(*) FROM sluice.attempts") == 0)
            _ = try await store.setModelLimits(provider: "echo", model: "echo", paused: false)
            for id in ids {
                let job = try await h.client.wait(for: id, timeout: .seconds(20))
                #expect(job.state == .succeeded)
                #expect(job.attempt == 1)
            }
        }
    }

    /// The echo model paused, an admission without Redis, and two claimed echo jobs.
    static func pausedEchoWithTwoClaimedJobs(_ h: WorkerHarness) async throws -> (JobStore, Admission, [Job]) {
        let store = JobStore(postgres: h.postgres)
        _ = try await store.setModelLimits(provider: "echo", model: "echo", paused: true)
        return (store, try Self.admission(h, redis: false), try await LeasingTests.claimed(h, 2))
    }

    /// A resume wakes the model's jobs in the same commit; a worker that claims one before its
    /// listener marked the cached limits stale must not put it back for a whole pausedRetry on
    /// the strength of the old snapshot (no listener here: only the re-read can see the resume).
    @Test func pausedVerdictRereadsLimitsThatMayBeStale() async throws {
        let h = try WorkerHarness.current
        let (store, admission, jobs) = try await Self.pausedEchoWithTwoClaimedJobs(h)
        guard case .wait(let deferral, let limit) = await admission.admit(jobs[0]) else {
            Issue.record("a job of a paused model started")
            return
        }
        #expect(limit == "paused" && deferral.reason.contains("paused"))
        _ = try await store.setModelLimits(provider: "echo", model: "echo", paused: false)
        // Past the re-read's 250 ms, well inside the snapshot's own 5 s lifetime.
        try await Task.sleep(for: .milliseconds(400))
        guard case .start = await admission.admit(jobs[1]) else {
            Issue.record("the resumed model's job was put back on a stale snapshot")
            return
        }
    }

    /// A resume that commits between a worker's "paused" verdict and its write of the deferral
    /// wakes the model's waiting jobs without that one (it is still running then): the
    /// deferral itself sees the model is no longer paused and makes the job runnable at once,
    /// not after a whole pausedRetry. A deferral while the model is still paused keeps its time.
    @Test func pausedDeferralWrittenAfterTheResumeRunsAtOnce() async throws {
        let h = try WorkerHarness.current
        let (store, admission, jobs) = try await Self.pausedEchoWithTwoClaimedJobs(h)
        // The deferrals are the admission's own verdicts (sluice.defer recognises a paused
        // model's deferral by the reason they carry).
        var verdicts: [JobStore.Deferral] = []
        for job in jobs {
            guard case .wait(let deferral, "paused") = await admission.admit(job) else {
                Issue.record("a job of a paused model was not put back as paused")
                return
            }
            verdicts.append(deferral)
        }
        func deferral(_ job: Job) -> JobStore.Deferral {
            var d = verdicts[0]
            d.jobID = job.id
            d.attempt = job.attempt
            return d
        }
        #expect(verdicts[0].runAt.timeIntervalSinceNow > 50)
        #expect(try await store.deferJobs(worker: "w", [verdicts[0]]) == 1)
        _ = try await store.setModelLimits(provider: "echo", model: "echo", paused: false)
        #expect(try await store.deferJobs(worker: "w", [verdicts[1]]) == 1)
        let waits = try await h.postgres.query(
            "SELECT id, extract(epoch FROM run_at - now())::float8 FROM sluice.jobs WHERE id = ANY($1)", [jobs.map(\.id)])
        let wait = Dictionary(uniqueKeysWithValues: try waits.rows.map { (try $0.decode(UUID.self, at: 0), try $0.decode(Double.self, at: 1)) })
        // The first was deferred while paused and then woken by the resume; the second was
        // deferred after the resume committed.
        #expect((wait[jobs[0].id] ?? 99) <= 0)
        #expect((wait[jobs[1].id] ?? 99) <= 0, "deferred after the resume, yet it waits \(wait[jobs[1].id] ?? 99) s")
        // While the model is paused, a paused deferral keeps its time.
        _ = try await store.setModelLimits(provider: "echo", model: "echo", paused: true)
        let again = try await h.client.store.claim(.init(worker: "w", limit: 1, lanes: Lane.allCases, tenants: nil, lease: .seconds(600),
                                                         starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
        try #require(again.count == 1)
        #expect(try await store.deferJobs(worker: "w", [deferral(again[0])]) == 1)
        let kept = try await h.postgres.query(
            "SELECT extract(epoch FROM run_at - now())::float8 FROM sluice.jobs WHERE id = $1", [again[0].id]).rows[0].decode(Double.self, at: 0)
        #expect(kept > 50)
    }

    /// Seconds until each job's run_at (negative: runnable now).
    static func waits(_ h: WorkerHarness, _ ids: [UUID]) async throws -> [UUID: Double] {
        let rows = try await h.postgres.query(
            "SELECT id, extract(epoch FROM run_at - now())::float8 FROM sluice.jobs WHERE id = ANY($1) AND state = 'queued'", [ids])
        return Dictionary(uniqueKeysWithValues: try rows.rows.map { (try $0.decode(UUID.self, at: 0), try $0.decode(Double.self, at: 1)) })
    }

    /// A limit raised while a worker holds a job it is about to put back for that limit: the
    /// raise wakes the jobs already waiting, not this one (still running), so the deferral
    /// written afterwards runs at once instead of after a refill computed under the old limit.
    /// A deferral with no limit change since its claim keeps its time.
    @Test func rateLimitDeferralWrittenAfterALimitChangeRunsAtOnce() async throws {
        let h = try WorkerHarness.current
        let store = JobStore(postgres: h.postgres)
        _ = try await store.setModelLimits(provider: "echo", model: "echo", rpm: 6)
        _ = try await h.client.enqueue(batch: (0..<4).map { echo("acme", "limited \($0)") })
        let jobs = try await h.client.store.claim(.init(worker: "w", limit: 4, lanes: Lane.allCases, tenants: nil, lease: .seconds(600),
                                                        starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
        try #require(jobs.count == 4)
        let model = "rate limit: echo/echo rpm bucket is empty (per-minute limit 6)"
        let tenant = "rate limit: tenant acme rpm bucket is empty (per-minute limit 6)"
        func deferral(_ job: Job, _ reason: String) -> JobStore.Deferral {
            .init(jobID: job.id, attempt: job.attempt, runAt: Date().addingTimeInterval(60), reason: reason)
        }
        // No change since the claim: both kinds keep their wait.
        #expect(try await store.deferJobs(worker: "w", [deferral(jobs[0], model), deferral(jobs[1], tenant)]) == 2)
        var wait = try await Self.waits(h, jobs.map(\.id))
        #expect((wait[jobs[0].id] ?? 0) > 50 && (wait[jobs[1].id] ?? 0) > 50, "\(wait)")
        // The model's limit is raised while jobs[2] is still claimed; its deferral comes after.
        _ = try await store.setModelLimits(provider: "echo", model: "echo", rpm: 600)
        #expect(try await store.deferJobs(worker: "w", [deferral(jobs[2], model)]) == 1)
        // The tenant's limit changes while jobs[3] is still claimed; its deferral comes after.
        try await store.updateTenant("acme", [.rpm(600)])
        #expect(try await store.deferJobs(worker: "w", [deferral(jobs[3], tenant)]) == 1)
        wait = try await Self.waits(h, jobs.map(\.id))
        #expect((wait[jobs[2].id] ?? 99) <= 0, "deferred after the model's limit changed, yet it waits \(wait[jobs[2].id] ?? 99) s")
        #expect((wait[jobs[3].id] ?? 99) <= 0, "deferred after the tenant's limit changed, yet it waits \(wait[jobs[3].id] ?? 99) s")
    }

    /// Changing a tenant's rpm or tpm wakes its jobs that wait for the tenant's own bucket (as a
    /// model's new limits wake the model's), and only those: a job of the tenant waiting for a
    /// model's bucket, and a job of another tenant, keep their waits.
    @Test func changingATenantRateLimitWakesItsWaitingJobs() async throws {
        let h = try WorkerHarness.current
        let store = JobStore(postgres: h.postgres)
        _ = try await h.client.enqueue(batch: [echo("acme", "a1"), echo("acme", "a2"), echo("acme", "a3"), echo("other", "o1")])
        try await store.updateTenant("acme", [.rpm(6)])
        try await store.updateTenant("other", [.rpm(6)])
        let jobs = try await h.client.store.claim(.init(worker: "w", limit: 4, lanes: Lane.allCases, tenants: nil, lease: .seconds(600),
                                                        starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
        try #require(jobs.count == 4)
        let acme = jobs.filter { $0.tenant == "acme" }, other = try #require(jobs.first { $0.tenant == "other" })
        try #require(acme.count == 3)
        func deferral(_ job: Job, _ reason: String) -> JobStore.Deferral {
            .init(jobID: job.id, attempt: job.attempt, runAt: Date().addingTimeInterval(60), reason: reason)
        }
        #expect(try await store.deferJobs(worker: "w", [
            deferral(acme[0], "rate limit: tenant acme rpm bucket is empty (per-minute limit 6)"),
            deferral(acme[1], "rate limit: tenant acme tpm bucket is empty (per-minute limit 1000)"),
            deferral(acme[2], "rate limit: echo/echo rpm bucket is empty (per-minute limit 6)"),
            deferral(other, "rate limit: tenant other rpm bucket is empty (per-minute limit 6)"),
        ]) == 4)
        // A change of something else leaves them waiting.
        try await store.updateTenant("acme", [.weight(2)])
        var wait = try await Self.waits(h, jobs.map(\.id))
        #expect(wait.values.allSatisfy { $0 > 50 }, "\(wait)")
        try await store.updateTenant("acme", [.rpm(600)])
        wait = try await Self.waits(h, jobs.map(\.id))
        #expect((wait[acme[0].id] ?? 99) <= 0 && (wait[acme[1].id] ?? 99) <= 0, "\(wait)")
        #expect((wait[acme[2].id] ?? 0) > 50, "a job waiting for the model's bucket was woken by the tenant's change")
        #expect((wait[other.id] ?? 0) > 50, "another tenant's job was woken")
        // Woken jobs run: a claim takes them now.
        let again = try await h.client.store.claim(.init(worker: "w2", limit: 10, lanes: Lane.allCases, tenants: nil, lease: .seconds(600),
                                                         starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
        #expect(Set(again.map(\.id)) == [acme[0].id, acme[1].id])
    }

    /// A half-open breaker's probe whose call ends without a verdict on the provider's health
    /// (here a request the provider refused) gives the probe back: the next start probes at
    /// once. Before, every start of the model waited out the probe's timeout (the job's timeout
    /// + 5 s): two minutes without a call in a demo run, after a probe that met a 429.
    @Test func aProbeWithoutAVerdictIsGivenBack() async throws {
        let h = try WorkerHarness.current
        let admission = try Self.admission(h) { configuration in
            configuration.breaker.consecutiveFailures = 1
            configuration.breaker.openFor = .seconds(1)
        }
        _ = try await h.client.enqueue(batch: (0..<3).map { echo("acme", "probe \($0)") })
        let jobs = try await h.client.store.claim(.init(worker: "w", limit: 3, lanes: Lane.allCases, tenants: nil, lease: .seconds(600),
                                                        starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
        try #require(jobs.count == 3)
        func start(_ job: Job) async throws -> Admission.Ticket? {
            guard case .start(let ticket) = await admission.admit(job) else { return nil }
            return ticket
        }
        func finish(_ ticket: Admission.Ticket?, _ errorClass: ErrorClass) async {
            await admission.finish(ticket, provider: "echo", model: "echo", succeeded: false, errorClass: errorClass, usage: nil,
                                   costUSD: nil, retryAfter: nil, rateLimits: nil)
        }
        // A server error opens the breaker for a second.
        await finish(try #require(try await start(jobs[0])), .serverError)
        #expect(try await start(jobs[1]) == nil, "the open breaker let a start through")
        try await Task.sleep(for: .milliseconds(1100))
        // Half-open: one probe starts, the next start waits for it.
        let probe = try #require(try await start(jobs[1]), "no probe after the open time")
        #expect(try await start(jobs[2]) == nil, "a second start went through beside the probe")
        // The provider refuses the probe's request: nothing learnt about its health.
        await finish(probe, .invalidRequest)
        #expect(try await start(jobs[2]) != nil, "the probe was not given back")
    }

    @Test func spentHardBudgetHoldsTheTenantUntilTheLimitIsRaised() async throws {
        let h = try WorkerHarness.current
        let ids = try await h.client.enqueue(batch: (0..<3).map { echo("acme", "budget \($0)") }).map(\.id)
        _ = try await h.postgres.query("UPDATE sluice.tenants SET daily_token_budget_hard = 100 WHERE id = 'acme'")
        _ = try await h.postgres.query("""
            INSERT INTO sluice.usage_daily (tenant, day, tokens, cost_usd, requests)
            VALUES ('acme', (now() AT TIME ZONE 'UTC')::date, 150, 0, 10)
            """)
        try await h.withWorkers([try Self.worker(h, try Self.admission(h))]) {
            try await Self.eventually("the tenant is held") {
                try await h.count("SELECT count(*) FROM sluice.tenants WHERE id = 'acme' AND held_until > now()") == 1
            }
            try await Self.eventually("its jobs are all queued again") {
                try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'queued'") == 3
            }
            try await Task.sleep(for: .seconds(1))
            #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'queued'") == 3)
            #expect(try await h.count("SELECT count(*) FROM sluice.attempts") == 0)
            let job = try #require(try await h.client.job(ids[0]))
            #expect(job.waitReason?.contains("daily token budget of 100 spent") == true)
            // Raising the limit releases the hold at once.
            _ = try await h.postgres.query("UPDATE sluice.tenants SET daily_token_budget_hard = 1000000 WHERE id = 'acme'")
            for id in ids {
                #expect(try await h.client.wait(for: id, timeout: .seconds(20)).state == .succeeded)
            }
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.tenants WHERE held_until IS NOT NULL") == 0)
    }

    @Test func concurrentJobsOvershootAHardBudgetByAtMostOneEnvelope() async throws {
        let h = try WorkerHarness.current
        // Each job reserves its estimated input plus 40 output tokens; 100 jobs at once against
        // a 300-token daily budget.
        let specs = (0..<100).map { i -> JobSpec in
            var spec = echo("acme", "a budget test prompt number \(i) with some words in it")
            spec.maxOutputTokens = 40
            return spec
        }
        _ = try await h.client.enqueue(batch: specs)
        _ = try await h.postgres.query("UPDATE sluice.tenants SET daily_token_budget_hard = 300 WHERE id = 'acme'")
        let envelope = try await h.count("SELECT max(estimated_input_tokens + 40)::int FROM sluice.jobs")
        try await h.withWorkers([try Self.worker(h, try Self.admission(h))]) {
            try await Self.eventually("the tenant is held once its budget is spent", timeout: .seconds(40)) {
                try await h.count("SELECT count(*) FROM sluice.tenants WHERE id = 'acme' AND held_until > now()") == 1
            }
        }
        let spent = try await h.count("SELECT coalesce(sum(tokens), 0)::int FROM sluice.usage_daily WHERE tenant = 'acme'")
        #expect(spent >= 300)
        #expect(spent <= 300 + envelope, "spent \(spent) tokens against a 300-token budget (envelope \(envelope))")
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'queued'") > 0)
    }

    @Test func workerRefusesToStartWithLimitsButNoRedis() async throws {
        let h = try WorkerHarness.current
        _ = try await JobStore(postgres: h.postgres).setModelLimits(provider: "echo", model: "echo", rpm: 100)
        let admission = try Self.admission(h, redis: false)
        await #expect(throws: WorkerError.self) {
            try await admission.checkAtStart()
        }
        do {
            try await admission.checkAtStart()
        } catch {
            #expect(error.message.contains("SLUICE_REDIS_URL"))
        }
    }

    @Test func badLimitsAreRefusedNamingTheField() async throws {
        let h = try WorkerHarness.current
        let store = JobStore(postgres: h.postgres)
        await #expect(throws: SluiceError.self) {
            _ = try await store.setModelLimits(provider: "echo", model: "echo", rpm: -5)
        }
        do {
            _ = try await store.setModelLimits(provider: "echo", model: "echo", tpm: -1)
        } catch {
            #expect(error.field == "tpm")
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.model_limits") == 0)
    }

    @Test func failingModelOpensItsBreakerAndOtherJobsWait() async throws {
        let h = try WorkerHarness.current
        let admission = try Self.admission(h) { configuration in
            configuration.breaker.consecutiveFailures = 3
            configuration.breaker.openFor = .seconds(30)
        }
        // Three jobs fail with server errors (no retry): the third failure opens the breaker.
        let failing = try await h.client.enqueue(batch: (0..<3).map { _ in
            echo("acme", "boom", metadata: #"{"echo_fail":"server_error"}"#, maxAttempts: 1)
        }).map(\.id)
        try await h.withWorkers([try Self.worker(h, admission)]) {
            for id in failing { #expect(try await h.client.wait(for: id, timeout: .seconds(20)).state == .dead) }
            // Healthy jobs of the same model now wait instead of calling a failing provider.
            let healthy = try await h.client.enqueue(batch: (0..<3).map { echo("acme", "fine \($0)") }).map(\.id)
            try await Self.eventually("the healthy jobs wait for the breaker") {
                try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'queued' AND wait_reason LIKE 'circuit breaker open%'",
                                  [healthy]) == 3
            }
            #expect(try await h.count("SELECT count(*) FROM sluice.attempts WHERE job_id = ANY($1)", [healthy]) == 0)
        }
    }

    /// With hundreds of slots, every job starting while the cached limits were stale read them
    /// from the database itself (643 reads of `sluice.limits_snapshot` in a 100k-job run of 2 × 512
    /// slots). Concurrent admissions share one read; a change (NOTIFY sluice_limits → invalidate)
    /// makes the next admission read again and see it.
    @Test func concurrentAdmissionsShareOneReadOfTheLimits() async throws {
        let h = try WorkerHarness.current
        let store = JobStore(postgres: h.postgres)
        _ = try await store.setModelLimits(provider: "echo", model: "echo", rpm: 60)
        let admission = try Self.admission(h)
        func rpms() async -> [Int?] {
            await withTaskGroup(of: Int?.self) { group in
                for _ in 0..<200 {
                    group.addTask { await admission.limits().models.first { $0.model == "echo" }?.rpm }
                }
                return await group.reduce(into: [Int?]()) { $0.append($1) }
            }
        }
        let before = await rpms()
        #expect(before.count == 200 && before.allSatisfy { $0 == 60 })
        #expect(admission.limitsReads == 1)
        _ = await admission.limits()
        #expect(admission.limitsReads == 1, "a fresh cache is not read again")
        _ = try await store.setModelLimits(provider: "echo", model: "echo", rpm: 120)
        admission.invalidate()
        let after = await rpms()
        #expect(after.allSatisfy { $0 == 120 })
        #expect(admission.limitsReads == 2)
    }
}
