import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// Fair queueing at claim level (docs/ARCHITECTURE.md, "Fairness"): start-time fair queueing
/// over tenants, per lane, through `sluice.claim` as the worker calls it.
@Suite("Fair queueing: weights, quiet tenants, new virtual starts", .workerDatabase)
struct FairQueueingTests {
    /// Claims up to `limit` jobs as a worker does; returns each claimed job's tenant.
    func claim(_ h: WorkerHarness, _ limit: Int, worker: String = "w", reserved: Int = 0, window: Int = 256) async throws -> [Job] {
        try await h.client.store.claim(.init(
            worker: worker, limit: limit, lanes: Lane.allCases, tenants: nil, lease: .seconds(60),
            starvationAfter: .seconds(60), reserved: reserved, tenantWindow: window))
    }

    func counts(_ jobs: [Job]) -> [String: Int] {
        jobs.reduce(into: [:]) { $0[$1.tenant, default: 0] += 1 }
    }

    /// Three tenants with deep backlogs at weights 1, 2 and 4: over 700 starts (7 claims of
    /// 100) they get 100, 200 and 400, within 3 each. (Taking turns would give ~233 each; the
    /// old least-loaded order the same; first come first served all 700 to one tenant.)
    @Test func backloggedTenantsAreStartedInProportionToTheirWeights() async throws {
        let h = try WorkerHarness.current
        for tenant in ["w1", "w2", "w4"] {
            _ = try await h.client.enqueue(batch: (0..<500).map { echo(tenant, "job \($0)") })
        }
        try await h.client.store.updateTenant("w2", [.weight(2), .maxConcurrency(100_000)])
        try await h.client.store.updateTenant("w4", [.weight(4), .maxConcurrency(100_000)])
        try await h.client.store.updateTenant("w1", [.maxConcurrency(100_000)])
        var started: [String: Int] = [:]
        for _ in 0..<7 {
            let jobs = try await claim(h, 100)
            #expect(jobs.count == 100)
            started.merge(counts(jobs), uniquingKeysWith: +)
        }
        for (tenant, expected) in [("w1", 100), ("w2", 200), ("w4", 400)] {
            #expect(abs((started[tenant] ?? 0) - expected) <= 3, "\(tenant): \(started)")
        }
        // Shown to operators.
        #expect(try await h.client.store.tenant("w4")?.weight == 4)
    }

    /// A tenant that had nothing queued starts at the lane's virtual time: its single job goes
    /// ahead of a backlog that has been running for a while, but a burst of its jobs then takes
    /// turns with that backlog instead of going first as a whole (it cannot bank the share it
    /// did not use while it was quiet).
    @Test func aQuietTenantsJobGoesFirstAndABurstTakesTurns() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<1000).map { echo("noisy", "n \($0)") })
        try await h.client.store.updateTenant("noisy", [.maxConcurrency(100_000)])
        for _ in 0..<3 { #expect(try await claim(h, 100).count == 100) }
        _ = try await h.client.enqueue(echo("quiet", "q"))
        #expect(try await claim(h, 1).map(\.tenant) == ["quiet"])

        _ = try await h.client.enqueue(batch: (0..<20).map { echo("quiet", "burst \($0)") })
        let next = counts(try await claim(h, 20))
        #expect((9...11).contains(next["quiet"] ?? 0), "\(next)")
        #expect((9...11).contains(next["noisy"] ?? 0), "\(next)")
    }

    /// A tenant held back by its concurrency limit does not bank a share: when its limit is
    /// raised it takes turns with the other backlog instead of taking every slot.
    @Test func aThrottledTenantDoesNotBankItsShare() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<300).map { echo("capped", "c \($0)") })
        _ = try await h.client.enqueue(batch: (0..<300).map { echo("free", "f \($0)") })
        try await h.client.store.updateTenant("capped", [.maxConcurrency(2)])
        try await h.client.store.updateTenant("free", [.maxConcurrency(100_000)])
        var started: [String: Int] = [:]
        for _ in 0..<5 { started.merge(counts(try await claim(h, 40)), uniquingKeysWith: +) }
        #expect(started["capped"] == 2)
        #expect((started["free"] ?? 0) > 150, "\(started)")
        try await h.client.store.updateTenant("capped", [.maxConcurrency(100_000)])
        let after = counts(try await claim(h, 40))
        #expect((19...21).contains(after["capped"] ?? 0), "\(after)")
    }

    /// A retried job gets a new virtual start from its tenant's clock, which its first attempt
    /// already moved: it does not jump ahead of the other tenant's backlog, and one retried
    /// later waits (parked) until its time, then runs.
    @Test func aRetryGetsANewVirtualStart() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<100).map { echo("other", "o \($0)") })
        _ = try await h.client.enqueue(batch: (0..<3).map { echo("acme", "a \($0)") })
        _ = try await h.postgres.query("UPDATE sluice.tenants SET max_concurrency = 100000")
        let first = try await claim(h, 6)
        #expect(counts(first) == ["acme": 3, "other": 3])
        // acme's three attempts fail and are retried at once.
        let retried = first.filter { $0.tenant == "acme" }
        let outcomes = retried.map { job in
            var outcome = AttemptOutcome(jobID: job.id, attempt: job.attempt, kind: .retry, startedAt: Date(), duration: .milliseconds(1))
            outcome.errorClass = .serverError
            outcome.errorMessage = "try again"
            outcome.retryAt = Date()
            return outcome
        }
        #expect(try await h.client.store.finishAttempts(worker: "w", outcomes: outcomes) == 3)
        // Virtual starts now: acme 3, 4, 5 (its clock); other 3, 4, … So turns, not acme first.
        #expect(counts(try await claim(h, 4)) == ["acme": 2, "other": 2])

        // A retry due later is not claimed before its time, then is.
        let last = try #require(try await h.postgres.query(
            "SELECT id FROM sluice.jobs WHERE tenant = 'acme' AND state = 'queued'").rows.first?.decode(UUID.self, at: 0))
        let later = try #require(try await claim(h, 200).filter { $0.tenant == "acme" }.first)
        #expect(later.id == last)
        var outcome = AttemptOutcome(jobID: later.id, attempt: later.attempt, kind: .retry, startedAt: Date(), duration: .milliseconds(1))
        outcome.errorClass = .serverError
        outcome.errorMessage = "later"
        outcome.retryAt = Date().addingTimeInterval(2)
        #expect(try await h.client.store.finishAttempts(worker: "w", outcomes: [outcome]) == 1)
        #expect(try await claim(h, 10).isEmpty)
        let deadline = Date().addingTimeInterval(15)
        var again: [Job] = []
        while again.isEmpty && Date() < deadline {
            try await Task.sleep(for: .milliseconds(250))
            again = try await claim(h, 10)
        }
        #expect(again.map(\.id) == [later.id])
    }

    /// A claimed job put back by admission (sluice.defer) until later waits parked, is not
    /// claimed before its time, and starts after it with a new virtual start.
    @Test func aDeferredJobWaitsForItsTimeThenRuns() async throws {
        let h = try WorkerHarness.current
        let id = try await h.client.enqueue(echo("acme", "deferred")).id
        let job = try #require(try await claim(h, 1).first)
        #expect(job.id == id)
        #expect(try await h.client.store.deferJobs(worker: "w", [
            .init(jobID: id, attempt: job.attempt, runAt: Date().addingTimeInterval(2), reason: "tpm bucket empty")]) == 1)
        #expect(try await claim(h, 1).isEmpty)
        #expect(try await h.count("SELECT count(*) FROM sluice.fair_queue WHERE tenant = 'acme' AND parked_until > now()") == 1)
        let deadline = Date().addingTimeInterval(15)
        var again: [Job] = []
        while again.isEmpty && Date() < deadline {
            try await Task.sleep(for: .milliseconds(250))
            again = try await claim(h, 1)
        }
        #expect(again.map(\.id) == [id])
    }

    /// Paused and held tenants are parked (their jobs are not stepped over by every claim) and
    /// run as soon as they are resumed or released.
    @Test func pausedAndHeldTenantsAreParkedAndComeBackAtOnce() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<5).map { echo("paused", "p \($0)") })
        _ = try await h.client.enqueue(batch: (0..<5).map { echo("held", "h \($0)") })
        _ = try await h.postgres.query("UPDATE sluice.tenants SET paused = true WHERE id = 'paused'")
        try await h.client.store.holdTenant("held", until: Date().addingTimeInterval(3600), reason: "daily budget spent")
        #expect(try await claim(h, 10).isEmpty)
        #expect(try await h.count("SELECT count(*) FROM sluice.fair_queue WHERE parked_until IS NOT NULL") == 2)
        #expect(try await claim(h, 10).isEmpty)

        _ = try await h.postgres.query("UPDATE sluice.tenants SET paused = false WHERE id = 'paused'")
        #expect(counts(try await claim(h, 10)) == ["paused": 5])
        _ = try await h.postgres.query("UPDATE sluice.tenants SET held_until = NULL, hold_reason = NULL WHERE id = 'held'")
        #expect(counts(try await claim(h, 10)) == ["held": 5])
    }

    /// A claim reads the fair queue's order index for about the tenants it can start, not for
    /// every tenant with work: with 1,000 tenants, a claim of 10 reads at most 18 entries.
    @Test func aClaimReadsAFewTenantsWhateverTheirNumber() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<2000).map { echo("t\($0 % 1000)", "x \($0)") })
        let scans = try await h.postgres.withTransaction { conn in
            let claimed = try await conn.query(
                "SELECT count(*)::int FROM sluice.claim('w', 10, enum_range(NULL::sluice.lane), NULL, '30 seconds')")
            #expect(try claimed.rows[0].decode(Int.self, at: 0) == 10)
            return try await conn.query(
                "SELECT pg_stat_get_xact_tuples_returned('sluice.fair_queue_order_idx'::regclass)::int").rows[0]
        }
        let read = try scans.decode(Int.self, at: 0)
        #expect(read > 0 && read <= 18, "\(read) entries of fair_queue_order_idx read")
        // Every tenant is reached: 100 claims of 10 start one job of each.
        var seen = Set<String>()
        for _ in 0..<100 { seen.formUnion(try await claim(h, 10).map(\.tenant)) }
        #expect(seen.count == 1000)
    }

    /// Weights are validated before any statement runs, with a typed error naming the field;
    /// the table refuses them too.
    @Test func weightsMustBePositiveAndBounded() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(echo("acme", "x"))
        for bad in [0, -1, 1001, .nan, .infinity] as [Double] {
            let error = await #expect(throws: SluiceError.self) {
                try await h.client.store.updateTenant("acme", [.weight(bad)])
            }
            #expect(error?.code == .invalidArgument, "\(bad)")
            #expect(error?.field == "weight", "\(bad)")
            #expect(error?.rule == "range", "\(bad)")
        }
        await #expect(throws: (any Error).self) {
            _ = try await h.postgres.query("UPDATE sluice.tenants SET weight = 0 WHERE id = 'acme'")
        }
        try await h.client.store.updateTenant("acme", [.weight(0.5)])
        #expect(try await h.client.store.tenant("acme")?.weight == 0.5)
    }
}

extension FairQueueingTests {
    /// The safety net: queued jobs whose tenant lost its fair-queue row (here deleted by hand)
    /// are registered again by the repair the workers run with pruning, and then claimed.
    @Test func theRepairRegistersQueuedJobsMissingFromTheFairQueue() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<3).map { echo("lost", "l \($0)") })
        _ = try await h.client.enqueue(echo("kept", "k"))
        _ = try await h.postgres.query("DELETE FROM sluice.fair_queue WHERE tenant = 'lost'")
        #expect(counts(try await claim(h, 10)) == ["kept": 1])
        #expect(try await h.client.store.repairFairQueue() == 1)
        #expect(try await h.client.store.repairFairQueue() == 0)
        #expect(counts(try await claim(h, 10)) == ["lost": 3])
    }
}

extension FairQueueingTests {
    /// A claim that finds a tenant's fair-queue row empty does not delete it while an enqueue
    /// of that tenant is still in flight (the enqueue holds the row FOR KEY SHARE): once the
    /// enqueue commits, its job is claimed at once, not stranded without a row.
    @Test func aClaimDoesNotRemoveTheRowOfAJobBeingAdded() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(echo("acme", "first"))
        #expect(try await claim(h, 1).count == 1)   // acme's row stays, empty
        let added = try await h.postgres.withTransaction { conn -> UUID in
            let id = try await conn.query(
                "SELECT sluice.enqueue('acme', 'normal', 'echo', 'echo', '{\"messages\":[{\"role\":\"user\",\"content\":\"late\"}]}')"
            ).rows[0].decode(UUID.self, at: 0)
            // Uncommitted: the claim sees no queued job of acme, and must leave the row.
            #expect(try await claim(h, 1).isEmpty)
            #expect(try await h.count("SELECT count(*) FROM sluice.fair_queue WHERE tenant = 'acme'") == 1)
            return id
        }
        #expect(try await claim(h, 1).map(\.id) == [added])
    }
}

extension FairQueueingTests {
    /// The claim remembers where each tenant's queued jobs begin in jobs_claim_idx (0012) and
    /// starts its next probe there, instead of stepping over every dead entry its earlier
    /// claims left at the front of the range (vacuum removes them once a minute at most).
    @Test func aClaimStartsWhereTheLastOneFoundTheTenantsFirstJob() async throws {
        let h = try WorkerHarness.current
        _ = try await h.postgres.query("ALTER TABLE sluice.jobs SET (autovacuum_enabled = off)")
        for part in 0..<2 { _ = try await h.client.enqueue(batch: (0..<6_000).map { echo("deep", "job \(part) \($0)") }) }
        try await h.client.store.updateTenant("deep", [.maxConcurrency(100_000)])
        // 10,000 claimed: 10,000 dead entries at the front of the tenant's range.
        for _ in 0..<100 { #expect(try await claim(h, 100).count == 100) }
        // Pages of the claim index one claim of 1 reads (entries marked dead are skipped
        // without being counted as read, but their pages are still read). (The counter is read before and after, in the
        // claim's transaction: PostgreSQL 15 adds counts of earlier transactions of the same
        // connection not yet flushed to the statistics.)
        func entriesRead() async throws -> Int {
            try await h.postgres.withTransaction { conn in
                let counter = "SELECT pg_stat_get_xact_blocks_fetched('sluice.jobs_claim_idx'::regclass)::int"
                let before = try await conn.query(PostgresQuery(unsafeSQL: counter)).rows[0].decode(Int.self, at: 0)
                let claimed = try await conn.query("SELECT count(*)::int FROM sluice.claim('w', 1, enum_range(NULL::sluice.lane), NULL, '30 seconds')")
                #expect(try claimed.rows[0].decode(Int.self, at: 0) == 1)
                return try await conn.query(PostgresQuery(unsafeSQL: counter)).rows[0].decode(Int.self, at: 0) - before
            }
        }
        // From the start (the remembered place forgotten): every page of dead entries.
        _ = try await h.postgres.query("UPDATE sluice.fair_queue SET head_seen = NULL WHERE tenant = 'deep'")
        let fromStart = try await entriesRead()
        // From the place the claim just made found (less than a second ago).
        let fromPlace = try await entriesRead()
        #expect(fromStart >= 40, "\(fromStart) pages read from the start")
        #expect(fromPlace <= 10, "\(fromPlace) pages read from the remembered place")
        _ = try await h.postgres.query("ALTER TABLE sluice.jobs RESET (autovacuum_enabled)")
    }

    /// A job that becomes visible behind the remembered place (here: its run_at moved an hour
    /// back, as for a transaction that began before the head job's and committed after the
    /// claim) is not skipped for long: a place older than a second is not used, so the job is
    /// claimed while many of its tenant's jobs are still queued in front of it (not only once
    /// they ran out).
    @Test func aJobBehindTheRememberedPlaceIsStillClaimed() async throws {
        let h = try WorkerHarness.current
        let ids = try await h.client.enqueue(batch: (0..<60).map { echo("late", "job \($0)") }).map(\.id)
        try await h.client.store.updateTenant("late", [.maxConcurrency(100)])
        #expect(try await claim(h, 1).map(\.id) == [ids[0]])
        let late = try await h.client.enqueue(echo("late", "late job")).id
        _ = try await h.postgres.query("UPDATE sluice.jobs SET run_at = now() - interval '1 hour' WHERE id = $1", [late])
        var claimed: [UUID] = []
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while !claimed.contains(late) && clock.now < deadline {
            claimed += try await claim(h, 1).map(\.id)
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(claimed.contains(late), "the late job was not claimed within 10 s")
        #expect(claimed.count < 50, "claimed only after \(claimed.count) of the 59 jobs in front of it")
        // Every job once; the rest still queued.
        #expect(Set(claimed).count == claimed.count)
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE tenant = 'late' AND state = 'queued'") == 60 - claimed.count)
    }
}
