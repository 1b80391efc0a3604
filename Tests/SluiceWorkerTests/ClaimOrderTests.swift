import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// The claim statement's ordering rules, exercised directly.
@Suite("Claim order: lanes, anti-starvation, tenant fairness, the tenant window", .workerDatabase)
struct ClaimOrderTests {
    func claim(_ h: WorkerHarness, _ limit: Int, starvation: String = "10 seconds") async throws -> [(tenant: String, lane: String)] {
        try await h.postgres.query(
            "SELECT tenant, lane::text FROM sluice.claim('w', $1::int, enum_range(NULL::sluice.lane), NULL, '30 seconds', $2::interval)",
            [limit, starvation]).rows.map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1)) }
    }

    /// The claim finds tenants with work through the claim index (queued rows only). With 30k
    /// rows of one tenant and fresh statistics the planner once preferred the tenant listing
    /// index for that step, which walks the tenant's finished jobs too: claims slowed down as
    /// they accumulated. The claim's own transaction's index statistics show what it read.
    @Test func claimsNeverReadTheTenantListingIndex() async throws {
        let h = try WorkerHarness.current
        for _ in 0..<3 {
            _ = try await h.client.enqueue(batch: (0..<10_000).map { _ in echo("noisy", "x") })
        }
        _ = try await h.postgres.query("UPDATE sluice.tenants SET max_concurrency = 100000")
        _ = try await h.postgres.query("VACUUM ANALYZE sluice.jobs")
        let scans = try await h.postgres.withTransaction { conn in
            let claimed = try await conn.query(
                "SELECT count(*)::int FROM sluice.claim('w', 20, enum_range(NULL::sluice.lane), NULL, '30 seconds')")
            #expect(try claimed.rows[0].decode(Int.self, at: 0) == 20)
            return try await conn.query("""
                SELECT pg_stat_get_xact_tuples_returned('sluice.jobs_tenant_idx'::regclass)::int,
                       pg_stat_get_xact_tuples_returned('sluice.jobs_claim_idx'::regclass)::int
                """).rows[0]
        }
        #expect(try scans.decode(Int.self, at: 0) == 0)
        #expect(try scans.decode(Int.self, at: 1) > 0)
    }

    /// Claims with a window of tenants: each claim considers at most p_window tenants with
    /// work, continuing where the previous one stopped, so every tenant is reached and a claim's
    /// cost does not grow with the number of tenants.
    @Test func aWindowOfTenantsRotatesAcrossClaims() async throws {
        let h = try WorkerHarness.current
        for tenant in ["ta", "tb", "tc", "td", "te"] {
            _ = try await h.client.enqueue(batch: (0..<3).map { _ in echo(tenant, "x") })
        }
        func claimWindow() async throws -> Set<String> {
            Set(try await h.postgres.query(
                "SELECT tenant FROM sluice.claim('w', 10, enum_range(NULL::sluice.lane), NULL, '30 seconds', '10 seconds', 0, 2)"
            ).rows.map { try $0.decode(String.self, at: 0) })
        }
        #expect(try await claimWindow() == ["ta", "tb"])
        #expect(try await claimWindow() == ["tc", "td"])
        #expect(try await claimWindow() == ["te"])         // then wraps: ta..td have nothing left
        #expect(try await claimWindow().isEmpty)
        // A tenant with work again before the cursor is reached by wrapping around.
        _ = try await h.client.enqueue(echo("tb", "again"))
        #expect(try await claimWindow() == ["tb"])
    }

    @Test func interactiveJobsOutsideTheWindowAreClaimedAtOnce() async throws {
        let h = try WorkerHarness.current
        for tenant in ["ta", "tb", "tc", "td"] {
            _ = try await h.client.enqueue(batch: (0..<3).map { _ in echo(tenant, "x") })
        }
        _ = try await h.client.enqueue(echo("tz", "urgent", lane: .interactive))
        let claimed = try await h.postgres.query(
            "SELECT tenant, lane::text FROM sluice.claim('w', 10, enum_range(NULL::sluice.lane), NULL, '30 seconds', '10 seconds', 0, 2)"
        ).rows.map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1)) }
        #expect(claimed.contains { $0.0 == "tz" && $0.1 == "interactive" })
        #expect(Set(claimed.map(\.0)) == ["tz", "ta", "tb"])
    }

    @Test func higherLanesFirst() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<5).map { _ in echo("acme", "b", lane: .batch) })
        _ = try await h.client.enqueue(batch: (0..<5).map { _ in echo("acme", "n", lane: .normal) })
        _ = try await h.client.enqueue(batch: (0..<3).map { _ in echo("acme", "i", lane: .interactive) })
        let lanes = try await claim(h, 6).map(\.lane)
        #expect(lanes == ["interactive", "interactive", "interactive", "normal", "normal", "normal"])
    }

    @Test func starvingLowerLaneGetsAShare() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(echo("acme", "old batch", lane: .batch, runAt: Date().addingTimeInterval(-5)))
        _ = try await h.client.enqueue(batch: (0..<30).map { _ in echo("acme", "i", lane: .interactive) })
        // Not yet starving (threshold 1 minute): strict priority.
        let strict = try await claim(h, 10, starvation: "1 minute").map(\.lane)
        #expect(!strict.contains("batch"))
        // Waiting longer than the threshold (1 s): the batch job gets a slot.
        let aged = try await claim(h, 10, starvation: "1 second").map(\.lane)
        #expect(aged.contains("batch"))
    }

    /// Fair queueing: the busy tenant's clock moved past the 5 jobs it started, the quiet
    /// tenant starts at the lane's virtual time, so its newer job goes first. (This test was
    /// "the least-loaded tenant goes first": the order no longer counts running jobs, it
    /// counts starts; FairQueueingTests has the cases where the two differ.)
    @Test func aTenantThatStartedLessGoesFirstEvenWithYoungerJobs() async throws {
        let h = try WorkerHarness.current
        // The busy tenant has 5 jobs running and older jobs waiting; the quiet tenant's job is newer.
        _ = try await h.client.enqueue(batch: (0..<20).map { _ in echo("busy", "b", runAt: Date().addingTimeInterval(-60)) })
        _ = try await h.postgres.query(
            "SELECT id FROM sluice.claim('ghost', 5, enum_range(NULL::sluice.lane), '{busy}', '30 seconds')")
        _ = try await h.client.enqueue(echo("quiet", "q"))
        let first = try await claim(h, 1)
        #expect(first.map(\.tenant) == ["quiet"])
    }

    @Test func aQuietTenantIsNotStuckBehindANoisyBacklog() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<2000).map { _ in echo("noisy", "n") })
        _ = try await h.client.enqueue(echo("quiet", "q"))
        let first = try await claim(h, 4)
        #expect(first.contains { $0.tenant == "quiet" })
    }
    @Test func reservedSlotsTakeOnlyInteractiveJobsAndLightTenants() async throws {
        let h = try WorkerHarness.current
        // busy: 5 jobs running (claimed by another worker), a backlog, and one interactive job.
        _ = try await h.client.enqueue(batch: (0..<20).map { _ in echo("busy", "b", runAt: Date().addingTimeInterval(-60)) })
        _ = try await h.postgres.query(
            "SELECT id FROM sluice.claim('ghost', 5, enum_range(NULL::sluice.lane), '{busy}', '30 seconds')")
        _ = try await h.client.enqueue(echo("busy", "urgent", lane: .interactive))
        _ = try await h.client.enqueue(echo("calm", "c"))
        func claimReserved(_ limit: Int, reserved: Int) async throws -> [String] {
            try await h.postgres.query(
                """
                SELECT tenant || ':' || lane::text FROM sluice.claim('w', $1::int, enum_range(NULL::sluice.lane), NULL,
                                                                      '30 seconds', '10 seconds', $2::int)
                """, [limit, reserved]).rows.map { try $0.decode(String.self, at: 0) }
        }
        // 3 slots, 2 reserved: the interactive job takes the one ordinary slot, the light tenant
        // a reserved one; busy's backlog (5 running > 2) may not take the last reserved slot.
        let claimed = try await claimReserved(3, reserved: 2)
        #expect(claimed.sorted() == ["busy:interactive", "calm:normal"])
        // Without a reserve the same slots go to busy's backlog.
        let next = try await claimReserved(3, reserved: 0)
        #expect(next == ["busy:normal", "busy:normal", "busy:normal"])
    }
}

