import Foundation
import Sluice
import SluicePostgres
import SluiceWorker
import SluiceTestSupport
import Testing

@Suite("Retention: pruning finished jobs with their rows", .workerDatabase)
struct RetentionTests {
    /// Jobs in every state, run through a real worker (so successes have result and attempt
    /// rows, dead jobs attempt rows and a dead letter), then aged: pruning (in batches of 2, so
    /// several batches run) removes exactly the finished jobs past their retention (7 days;
    /// dead ones 30 days) with all their rows, and never a queued or running job however old.
    @Test func pruningRemovesOnlyFinishedJobsPastRetentionWithTheirRows() async throws {
        let h = try WorkerHarness.current
        var succeeded: [UUID] = []
        for i in 0..<8 { succeeded.append(try await h.client.enqueue(echo("acme", "ok \(i)")).id) }
        var dead: [UUID] = []
        for i in 0..<6 {
            dead.append(try await h.client.enqueue(echo("beta", "dead \(i)", metadata: #"{"echo_fail":"invalid_request"}"#)).id)
        }
        let ran = succeeded + dead
        try await h.withWorkers([try h.makeWorker()]) {
            for id in ran { _ = try await h.client.wait(for: id, timeout: .seconds(30)) }
        }
        #expect(try await h.count("SELECT count(*)::int FROM sluice.jobs WHERE id = ANY($1) AND state = 'succeeded'", [succeeded]) == 8)
        #expect(try await h.count("SELECT count(*)::int FROM sluice.jobs WHERE id = ANY($1) AND state = 'dead'", [dead]) == 6)
        #expect(try await h.count("SELECT count(*)::int FROM sluice.results WHERE job_id = ANY($1)", [succeeded]) == 8)
        #expect(try await h.count("SELECT count(*)::int FROM sluice.dead_letters WHERE job_id = ANY($1)", [dead]) == 6)
        // Cancelled while queued; queued; running (claimed by a worker that holds them an hour).
        var cancelled: [UUID] = []
        for i in 0..<2 {
            let id = try await h.client.enqueue(echo("acme", "cancel \(i)")).id
            #expect(try await h.client.cancel(id) == .cancelled)
            cancelled.append(id)
        }
        var live: [UUID] = []
        for i in 0..<5 { live.append(try await h.client.enqueue(echo("gamma", "live \(i)")).id) }
        let running = try await h.postgres.query(
            "SELECT id FROM sluice.claim('holder', 2, enum_range(NULL::sluice.lane), NULL, '1 hour')").rows
            .map { try $0.decode(UUID.self, at: 0) }
        #expect(running.count == 2)
        let depthBefore = try await h.count("SELECT coalesce(sum(queued), 0)::int FROM sluice.tenant_queue_depth")
        #expect(depthBefore == 3)

        // Ages: half the successes 8 days (past 7), half 6 days; dead ones 31 days (past 30)
        // and 8 days (kept: dead jobs are kept 30 days); one cancelled job 8 days, one fresh.
        // The queued and running jobs were created, scheduled and started 60 days ago.
        let expired = Array(succeeded.prefix(4)) + Array(dead.prefix(3)) + [cancelled[0]]
        _ = try await h.postgres.query("""
            UPDATE sluice.jobs SET finished_at = now() - CASE
                       WHEN id = ANY($1) THEN interval '8 days'
                       WHEN id = ANY($2) THEN interval '6 days'
                       WHEN id = ANY($3) THEN interval '31 days'
                       WHEN id = ANY($4) THEN interval '8 days'
                       WHEN id = $5 THEN interval '8 days'
                       ELSE interval '0 days' END
             WHERE finished_at IS NOT NULL
            """, [Array(succeeded.prefix(4)), Array(succeeded.suffix(4)), Array(dead.prefix(3)), Array(dead.suffix(3)), cancelled[0]])
        _ = try await h.postgres.query("""
            UPDATE sluice.jobs SET created_at = now() - interval '60 days', run_at = now() - interval '60 days',
                   started_at = CASE WHEN state = 'running' THEN now() - interval '60 days' END
             WHERE id = ANY($1)
            """, [live])

        var configuration = WorkerHarness.testConfiguration()
        configuration.retention = .seconds(7 * 86_400)
        configuration.deadRetention = .seconds(30 * 86_400)
        let worker = try h.makeWorker(configuration)
        #expect(try await worker.prune(batch: 2) == expired.count)
        #expect(try await worker.prune(batch: 2) == 0)

        let left = Set(try await h.postgres.query("SELECT id FROM sluice.jobs").rows.map { try $0.decode(UUID.self, at: 0) })
        #expect(left == Set(succeeded + dead + cancelled + live).subtracting(expired))
        // The pruned jobs' rows went with them; the kept jobs' rows are all there.
        #expect(try await h.count("SELECT count(*)::int FROM sluice.results WHERE job_id = ANY($1)", [expired]) == 0)
        #expect(try await h.count("SELECT count(*)::int FROM sluice.attempts WHERE job_id = ANY($1)", [expired]) == 0)
        #expect(try await h.count("SELECT count(*)::int FROM sluice.dead_letters WHERE job_id = ANY($1)", [expired]) == 0)
        #expect(try await h.count("SELECT count(*)::int FROM sluice.results WHERE job_id = ANY($1)", [Array(succeeded.suffix(4))]) == 4)
        #expect(try await h.count("SELECT count(DISTINCT job_id)::int FROM sluice.attempts WHERE job_id = ANY($1)",
                                  [Array(succeeded.suffix(4)) + Array(dead.suffix(3))]) == 7)
        #expect(try await h.count("SELECT count(*)::int FROM sluice.dead_letters WHERE job_id = ANY($1)", [Array(dead.suffix(3))]) == 3)
        // Queued and running jobs are untouched, and so are the queue-depth counters.
        #expect(try await h.count("SELECT count(*)::int FROM sluice.jobs WHERE id = ANY($1) AND state = 'running' AND lease_owner = 'holder'",
                                  [running]) == 2)
        #expect(try await h.count("SELECT count(*)::int FROM sluice.jobs WHERE id = ANY($1) AND state = 'queued'", [live]) == 3)
        #expect(try await h.count("SELECT coalesce(sum(queued), 0)::int FROM sluice.tenant_queue_depth") == 3)
    }

    /// A retention round with nothing past the retention reads no job row, however large the
    /// history: before 0010 the victim scan had no index bound and fetched every finished row
    /// (all 5,000 here: succeeded ones inside the retention, and dead ones past the ordinary
    /// retention but inside the dead one, which it stepped over in every batch).
    @Test func aRoundWithNothingToPruneReadsNoJobRow() async throws {
        let h = try WorkerHarness.current
        _ = try await h.postgres.query("""
            INSERT INTO sluice.jobs (tenant, state, provider, model, request, attempt, created_at, started_at, finished_at)
            SELECT 'acme', CASE WHEN i % 5 = 0 THEN 'dead' ELSE 'succeeded' END::sluice.job_state, 'echo', 'echo', '{}', 1,
                   now() - interval '10 days', now() - interval '10 days',
                   now() - CASE WHEN i % 5 = 0 THEN interval '20 days' ELSE interval '3 days' END
              FROM generate_series(1, 5000) i
            """)
        let fetched = try await h.postgres.withTransaction { connection in
            let deleted = try await connection.query(
                "SELECT sluice.prune(now() - interval '7 days', now() - interval '30 days', 1000)").rows[0].decode(Int.self, at: 0)
            #expect(deleted == 0)
            // This transaction's own counters: rows fetched from jobs by index and by sequential scan.
            return try await connection.query("""
                SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) FROM pg_stat_xact_user_tables
                 WHERE relid = 'sluice.jobs'::regclass
                """).rows[0].decode(Int.self, at: 0)
        }
        #expect(fetched == 0)
        #expect(try await h.count("SELECT count(*)::int FROM sluice.jobs") == 5000)
    }

    /// Retention settings are validated: zero or negative durations are refused by name.
    @Test func retentionSettingsMustBePositive() throws {
        for field in ["retention", "deadRetention", "pruneInterval"] {
            var configuration = WorkerConfiguration()
            switch field {
            case "retention": configuration.retention = .zero
            case "deadRetention": configuration.deadRetention = .zero
            default: configuration.pruneInterval = .seconds(-1)
            }
            let error = #expect(throws: WorkerError.self) { try configuration.validate() }
            #expect(error?.message.contains(field) == true)
        }
    }
}
