import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// The claim statement's ordering rules, exercised directly.
@Suite("Claim order: lanes, anti-starvation, tenant fairness")
struct ClaimOrderTests {
    func claim(_ h: WorkerHarness, _ limit: Int, starvation: String = "10 seconds") async throws -> [(tenant: String, lane: String)] {
        try await h.postgres.query(
            "SELECT tenant, lane::text FROM sluice.claim('w', $1::int, enum_range(NULL::sluice.lane), NULL, '30 seconds', $2::interval)",
            [limit, starvation]).rows.map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1)) }
    }

    @Test func higherLanesFirst() async throws {
        let h = try await WorkerHarness.make()
        _ = try await h.client.enqueue(batch: (0..<5).map { _ in echo("acme", "b", lane: .batch) })
        _ = try await h.client.enqueue(batch: (0..<5).map { _ in echo("acme", "n", lane: .normal) })
        _ = try await h.client.enqueue(batch: (0..<3).map { _ in echo("acme", "i", lane: .interactive) })
        let lanes = try await claim(h, 6).map(\.lane)
        #expect(lanes == ["interactive", "interactive", "interactive", "normal", "normal", "normal"])
        await h.close()
    }

    @Test func starvingLowerLaneGetsAShare() async throws {
        let h = try await WorkerHarness.make()
        _ = try await h.client.enqueue(echo("acme", "old batch", lane: .batch, runAt: Date().addingTimeInterval(-5)))
        _ = try await h.client.enqueue(batch: (0..<30).map { _ in echo("acme", "i", lane: .interactive) })
        // Not yet starving (threshold 1 minute): strict priority.
        let strict = try await claim(h, 10, starvation: "1 minute").map(\.lane)
        #expect(!strict.contains("batch"))
        // Waiting longer than the threshold (1 s): the batch job gets a slot.
        let aged = try await claim(h, 10, starvation: "1 second").map(\.lane)
        #expect(aged.contains("batch"))
        await h.close()
    }

    @Test func theLeastLoadedTenantGoesFirstEvenWithYoungerJobs() async throws {
        let h = try await WorkerHarness.make()
        // The busy tenant has 5 jobs running and older jobs waiting; the quiet tenant's job is newer.
        _ = try await h.client.enqueue(batch: (0..<20).map { _ in echo("busy", "b", runAt: Date().addingTimeInterval(-60)) })
        _ = try await h.postgres.query(
            "SELECT id FROM sluice.claim('ghost', 5, enum_range(NULL::sluice.lane), '{busy}', '30 seconds')")
        _ = try await h.client.enqueue(echo("quiet", "q"))
        let first = try await claim(h, 1)
        #expect(first.map(\.tenant) == ["quiet"])
        await h.close()
    }

    @Test func aQuietTenantIsNotStuckBehindANoisyBacklog() async throws {
        let h = try await WorkerHarness.make()
        _ = try await h.client.enqueue(batch: (0..<2000).map { _ in echo("noisy", "n") })
        _ = try await h.client.enqueue(echo("quiet", "q"))
        let first = try await claim(h, 4)
        #expect(first.contains { $0.tenant == "quiet" })
        await h.close()
    }
    @Test func reservedSlotsTakeOnlyInteractiveJobsAndLightTenants() async throws {
        let h = try await WorkerHarness.make()
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
        await h.close()
    }
}

