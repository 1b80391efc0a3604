import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// Concurrent claims (docs/ARCHITECTURE.md, "Claiming"): claims take turns on the claim lock
/// (a transaction-level advisory lock), and a claim counts a tenant's running jobs only once it
/// holds it, so a tenant's concurrency limit holds however many workers claim at once.
@Suite("Claims: concurrent claims and concurrency limits", .workerDatabase)
struct ClaimConcurrencyTests {
    static func claim(_ store: JobStore, worker: String, limit: Int) async throws -> [Job] {
        try await store.claim(.init(
            worker: worker, limit: limit, lanes: Lane.allCases, tenants: nil, lease: .seconds(60),
            starvationAfter: .seconds(60), reserved: 0, tenantWindow: 256))
    }

    /// Opens a transaction that claims `limit` jobs of `tenant` (holding the claim lock) and
    /// keeps it open until `release` yields; returns how many it claimed.
    static func holdClaim(_ h: WorkerHarness, tenant: String, limit: Int,
                          release: AsyncStream<Void>) -> (claimed: AsyncStream<Int>, done: Task<Void, any Error>) {
        let (claimed, report) = AsyncStream<Int>.makeStream()
        let done = Task {
            // (Finished on every path: a holder that failed must not leave the test waiting.)
            defer { report.finish() }
            try await h.postgres.withTransaction { conn in
                let rows = try await conn.query("""
                    SELECT id FROM sluice.claim('holder', $1::integer, ARRAY['normal']::sluice.lane[], ARRAY[$2]::text[],
                                                interval '60 seconds')
                    """, [limit, tenant])
                report.yield(rows.rows.count)
                for await _ in release { break }
            }
        }
        return (claimed, done)
    }

    /// A claim that starts while another claim's transaction is open waits for it, then counts
    /// the tenant's running jobs with the other claim's committed: with max_concurrency 3 and 2
    /// taken by the holder, it gets exactly 1, never 3.
    @Test func aClaimWaitsForAClaimInProgressAndThenRespectsTheLimit() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<10).map { echo("limited", "l\($0)") })
        try await h.client.store.updateTenant("limited", [.maxConcurrency(3)])
        let (release, letGo) = AsyncStream<Void>.makeStream()
        let holder = Self.holdClaim(h, tenant: "limited", limit: 2, release: release)
        var claimed = holder.claimed.makeAsyncIterator()
        #expect(await claimed.next() == 2)

        let store = h.client.store
        let second = Task { try await Self.claim(store, worker: "other", limit: 10) }
        // It must still be waiting for the claim lock (a claim that did not wait would be back
        // within milliseconds; one that waits is back only after the holder commits).
        try await Task.sleep(for: .seconds(1))
        let waiting = try await h.count("""
            SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()
            """)
        #expect(waiting == 1)
        letGo.yield()
        try await holder.done.value
        #expect(try await second.value.count == 1)
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE tenant = 'limited' AND state = 'running'") == 3)
    }

    /// Eight claims at once, round after round, over five tenants with max_concurrency 4, with
    /// the previous round's jobs finished in between: no tenant ever has more than 4 running
    /// jobs, and every job is started exactly once.
    @Test func concurrentClaimsNeverExceedATenantsLimit() async throws {
        let h = try WorkerHarness.current
        let tenants = (0..<5).map { "c\($0)" }
        _ = try await h.client.enqueue(batch: (0..<400).map { echo(tenants[$0 % tenants.count], "job \($0)") })
        for tenant in tenants { try await h.client.store.updateTenant(tenant, [.maxConcurrency(4)]) }
        let store = h.client.store
        var started: [UUID: Int] = [:]
        for _ in 0..<12 {
            let claimed = try await withThrowingTaskGroup(of: [Job].self) { group in
                for worker in 0..<8 {
                    group.addTask { try await Self.claim(store, worker: "w\(worker)", limit: 6) }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let over = try await h.count("""
                SELECT count(*) FROM (SELECT tenant FROM sluice.jobs WHERE state = 'running'
                                       GROUP BY tenant HAVING count(*) > 4) x
                """)
            #expect(over == 0)
            for job in claimed { started[job.id, default: 0] += 1 }
            let byWorker = Dictionary(grouping: claimed) { $0.leaseOwner ?? "" }
            for (worker, jobs) in byWorker {
                _ = try await store.finishAttempts(worker: worker, outcomes: jobs.map {
                    AttemptOutcome(jobID: $0.id, attempt: $0.attempt, kind: .cancelled,
                                   startedAt: Date(), duration: .milliseconds(1))
                }, notifyDone: false)
            }
        }
        #expect(started.values.allSatisfy { $0 == 1 })
        // 12 rounds × 5 tenants × 4 slots: every round fills every tenant's limit.
        #expect(started.count == 12 * 5 * 4)
    }
}
