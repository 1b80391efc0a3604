import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import SluiceWorker
import Testing

/// A burst into a quiet queue (docs/ARCHITECTURE.md, "Plans and statistics"): workers whose
/// cached claim plan was made while the queue was empty must run a sudden backlog at full speed,
/// not at one multi-second claim at a time until autovacuum analyses the table.
@Suite("A burst into an empty queue runs at once", .workerDatabase)
struct BurstTests {
    @Test func fiftyThousandJobsEnqueuedIntoAnIdleWorkerAllFinish() async throws {
        let h = try WorkerHarness.current
        // Autovacuum analyses a table only every autovacuum_naptime (1 min) at best and may be
        // busy elsewhere: here it never comes, so the claim runs on the plans and statistics of
        // the empty table throughout. (With the claim's earlier join, each claim then compared
        // every queued row with every chosen one: seconds per claim at this depth.)
        _ = try await h.postgres.query("ALTER TABLE sluice.jobs SET (autovacuum_enabled = false)")
        _ = try await h.postgres.query("INSERT INTO sluice.tenants (id, max_concurrency) VALUES ('burst', 100000)")
        let workers = try (0..<2).map { _ in try h.makeWorker(WorkerHarness.testConfiguration(concurrency: 128)) }
        let jobs = 50_000
        try await h.withWorkers(workers) {
            // The workers poll the empty queue (every 200 ms) and cache their plans.
            try await Task.sleep(for: .seconds(1))
            for offset in stride(from: 0, to: jobs, by: 10_000) {
                _ = try await h.client.enqueue(batch: (offset..<offset + 10_000).map { echo("burst", "job \($0)") })
            }
            // Generous: the slowest suite runs do this in well under a minute; with the stall
            // it takes tens of minutes.
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline,
                  try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'succeeded'") < jobs {
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'succeeded'") == jobs)
        #expect(try await h.count("SELECT count(*) FROM sluice.results") == jobs)
        for worker in workers { #expect(worker.unexpectedDatabaseErrors.isEmpty) }
        // Statistics were never gathered: the table still looks empty to the planner.
        #expect(try await h.count("SELECT (reltuples <= 0)::int FROM pg_class WHERE oid = 'sluice.jobs'::regclass") == 1)
    }
}
