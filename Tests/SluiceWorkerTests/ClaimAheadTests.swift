import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
@testable import SluiceWorker
import Testing

/// Claiming ahead (``WorkerConfiguration/claimAhead``): a worker holds up to N jobs claimed
/// beyond its free slots and starts them as slots free up, never running more calls than its
/// slots; on shutdown the ones not started go back to the queue without using an attempt.
@Suite("Claim ahead: jobs held beyond the free slots", .workerDatabase)
struct ClaimAheadTests {
    /// A test worker with `slots` slots, no interactive reserve, and `ahead` jobs held ahead.
    static func configuration(slots: Int, ahead: Int) -> WorkerConfiguration {
        var configuration = WorkerHarness.testConfiguration(concurrency: slots)
        configuration.interactiveReserve = 0
        configuration.claimAhead = ahead
        return configuration
    }

    /// 2 slots and 6 ahead, 20 calls of 200 ms: every job succeeds once, no more than 2 calls
    /// ever overlap, and jobs were claimed before a slot was free for them (their claim
    /// precedes their call by more than a call's length).
    @Test func jobsHeldAheadStartAsSlotsFreeAndNeverExceedThem() async throws {
        let h = try WorkerHarness.current
        let configuration = Self.configuration(slots: 2, ahead: 6)
        let ids = try await h.client.enqueue(batch: (0..<20).map { echo("acme", "job \($0)", metadata: #"{"echo_delay_ms":200}"#) })
            .map(\.id)
        let states = try await h.withWorkers([try h.makeWorker(configuration)]) { () async throws -> [JobState] in
            var states: [JobState] = []
            for id in ids { states.append(try await h.client.wait(for: id, timeout: .seconds(60)).state) }
            return states
        }
        #expect(states == Array(repeating: .succeeded, count: 20))
        #expect(try await h.count("SELECT count(*) FROM sluice.attempts WHERE job_id = ANY($1) AND outcome = 'succeeded'", [ids]) == 20)
        // Calls in flight at each call's start: those started before it and not yet ended.
        let overlap = try await h.count("""
            SELECT coalesce(max(n), 0) FROM (
                SELECT (SELECT count(*) FROM sluice.attempts b
                         WHERE b.job_id = ANY($1) AND b.started_at <= a.started_at
                           AND b.started_at + b.duration_ms * interval '1 millisecond' > a.started_at) AS n
                  FROM sluice.attempts a WHERE a.job_id = ANY($1)) x
            """, [ids])
        #expect(overlap >= 1 && overlap <= 2, "\(overlap) calls at once with 2 slots")
        // Held ahead: claimed (jobs.started_at, the claim) long before its call began.
        let heldAhead = try await h.count("""
            SELECT count(*) FROM sluice.jobs j JOIN sluice.attempts a ON a.job_id = j.id
             WHERE j.id = ANY($1) AND a.started_at - j.started_at > interval '150 milliseconds'
            """, [ids])
        #expect(heldAhead > 0)
    }

    /// 1 slot and 4 ahead, 5 calls of 3 s: all 5 are claimed (running in the store), 1 runs;
    /// a graceful shutdown puts the 4 held ahead back at once, queued, without an attempt
    /// used, while the running one finishes.
    @Test func jobsHeldAheadGoBackToTheQueueOnShutdown() async throws {
        let h = try WorkerHarness.current
        let configuration = Self.configuration(slots: 1, ahead: 4)
        let ids = try await h.client.enqueue(batch: (0..<5).map { echo("acme", "slow \($0)", metadata: #"{"echo_delay_ms":3000}"#) })
            .map(\.id)
        let claimed = try await h.withWorkers([try h.makeWorker(configuration)]) {
            for _ in 0..<300 {
                if try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'running'") == 5 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            return try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'running'")
        }
        #expect(claimed == 5)
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'succeeded'", [ids]) == 1)
        #expect(try await h.count("""
            SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'queued' AND attempt = 0 AND lease_owner IS NULL
            """, [ids]) == 4)
        #expect(try await h.count("SELECT count(*) FROM sluice.attempts WHERE job_id = ANY($1)", [ids]) == 1)
    }

    /// How a claim's jobs are split between the free slots and those held ahead: ordinary
    /// slots to the first jobs in start order, the reserved slot only to a privileged job (here
    /// the interactive one), never to the backlog; without claiming ahead, every job starts.
    @Test func reservedSlotsAreNotTakenByJobsThatWaitAhead() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<6).map { echo("busy", "b \($0)") })
        _ = try await h.client.enqueue(echo("busy", "urgent", lane: .interactive))
        try await h.client.store.updateTenant("busy", [.maxConcurrency(1000)])
        let claimed = Worker.startOrder(try await h.client.store.claim(.init(
            worker: "w", limit: 10, lanes: Lane.allCases, tenants: nil, lease: .seconds(60),
            starvationAfter: .seconds(60), reserved: 0, tenantWindow: 256)))
        #expect(claimed.count == 7)
        var configuration = WorkerHarness.testConfiguration(concurrency: 4)
        configuration.interactiveReserve = 1
        configuration.claimAhead = 8
        let (now, later) = try h.makeWorker(configuration).split(claimed)
        // 3 ordinary slots (the interactive job, first in start order, takes one of them) and
        // the reserved one, which no backlog job may take: 3 start, 4 wait.
        #expect(now.map(\.id) == Array(claimed.prefix(3).map(\.id)))
        #expect(later.map(\.id) == Array(claimed.dropFirst(3).map(\.id)))
        configuration.claimAhead = 0
        #expect(try h.makeWorker(configuration).split(claimed).later.isEmpty)
    }

    @Test func claimAheadIsValidated() throws {
        var configuration = WorkerConfiguration()
        configuration.claimAhead = -1
        #expect(throws: WorkerError.self) { try configuration.validate() }
        configuration.claimAhead = 64
        try configuration.validate()
    }
}
