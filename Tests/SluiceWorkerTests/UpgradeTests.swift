import Foundation
import Logging
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// A database created by the first release's migrations, holding jobs in every state, upgrades
/// to the latest schema with the embedded migrations; every job is intact afterwards and the
/// queued ones run.
@Suite(.migratedDatabase(prefix: "sluice_up_", poolSize: 16, migrate: false)) struct UpgradeTests {
    /// The versioned migrations of the first release (0001–0003), applied the way that
    /// release's migrator did (no repeatable migrations, no table for them).
    static let firstRelease = 3

    @Test func upgradeFromTheFirstReleaseKeepsEveryJobAndRunsTheQueuedOnes() async throws {
        let db = try MigratedDatabase.current
        let sql = db.postgres
        let migrator = PostgresMigrator(client: sql, schema: SluiceSchema.name, logger: db.logger)
        try await migrator.migrate(try SluiceSchema.migrations().filter { $0.version <= Self.firstRelease })
        _ = try await sql.query("DROP TABLE sluice.schema_migrations_repeatable")

        // Jobs in every state, written with the first release's SQL API and tables.
        func enqueue(_ lane: String, _ options: String = "{}") async throws -> UUID {
            try await sql.query(
                "SELECT sluice.enqueue('upgrade', $1, 'echo', 'echo', '{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}', $2::jsonb)",
                [lane, options]
            ).rows[0].decode(UUID.self, at: 0)
        }
        var queuedIDs: [UUID] = []
        for i in 0..<20 { queuedIDs.append(try await enqueue(i % 2 == 0 ? "normal" : "batch")) }
        let queued = queuedIDs
        let scheduled = try await enqueue("normal", #"{"run_at": "2099-01-01T00:00:00Z"}"#)
        let running = try await enqueue("interactive")
        let claimed = try await sql.query(
            "SELECT id FROM sluice.claim('old-worker', 1, ARRAY['interactive']::sluice.lane[], NULL, interval '1 hour')")
        #expect(try claimed.rows.map { try $0.decode(UUID.self, at: 0) } == [running])
        let succeeded = try await enqueue("high", #"{"idempotency_key": "done-1"}"#)
        _ = try await sql.query("""
            UPDATE sluice.jobs SET state = 'succeeded', attempt = 1, started_at = now() - interval '2 s', finished_at = now() WHERE id = $1;
            """, [succeeded])
        _ = try await sql.query("""
            INSERT INTO sluice.results (job_id, tenant, output_text, input_tokens, output_tokens, cost_usd, provider, model)
            VALUES ($1, 'upgrade', 'hello', 3, 1, 0.00001, 'echo', 'echo')
            """, [succeeded])
        let dead = try await enqueue("normal")
        _ = try await sql.query("""
            UPDATE sluice.jobs SET state = 'dead', attempt = 5, max_attempts = 5, started_at = now(), finished_at = now(),
                   last_error_class = 'server_error', last_error = 'boom' WHERE id = $1
            """, [dead])
        _ = try await sql.query("""
            INSERT INTO sluice.dead_letters (job_id, tenant, error_class, reason, last_error, attempts)
            VALUES ($1, 'upgrade', 'server_error', 'attempts exhausted', 'boom', 5)
            """, [dead])
        let cancelled = try await enqueue("normal")
        #expect(try await sql.query("SELECT sluice.cancel($1)", [cancelled]).rows[0].decode(String.self, at: 0) == "cancelled")

        let untouched = [scheduled, running, succeeded, dead, cancelled]
        let before = try await snapshot(sql, untouched + queued)

        // The upgrade: what `sluice migrate` runs.
        let report = try await SluiceSchema.migrate(sql, logger: db.logger)
        #expect(report.versioned.allSatisfy { $0.version > Self.firstRelease })
        #expect(report.repeatable.count == (try SluiceSchema.migrationSet().repeatable.count))
        #expect(try await snapshot(sql, untouched + queued) == before, "a job changed during the upgrade")
        // 0011's running counters start from the jobs running at the upgrade (the claim reads
        // them for concurrency limits): the old worker's job counts.
        #expect(try await sql.query("SELECT coalesce(sum(running), 0)::int FROM sluice.tenant_queue_depth WHERE tenant = 'upgrade'")
            .rows[0].decode(Int.self, at: 0) == 1)
        let status = try await SluiceSchema.status(sql, logger: db.logger)
        #expect(status.versioned.allSatisfy { $0.appliedAt != nil })
        #expect(status.repeatable.allSatisfy { $0.current })

        // The queued jobs run on the upgraded schema; the others stay as they were.
        let h = WorkerHarness(db: db)
        try await h.withWorkers([try h.makeWorker()]) {
            for id in queued {
                let job = try await h.client.wait(for: id, timeout: .seconds(30))
                #expect(job.state == .succeeded)
            }
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.results WHERE job_id = ANY($1)", [queued]) == queued.count)
        #expect(try await snapshot(sql, untouched) == before.filter { untouched.contains($0.key) })
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = $1 AND state = 'running' AND lease_owner = 'old-worker'", [running]) == 1)
        #expect(try await h.count("SELECT coalesce(sum(running), 0)::int FROM sluice.tenant_queue_depth WHERE tenant = 'upgrade'") == 1)
    }

    /// Each job's row, result and dead letter, as JSON text.
    /// Each job with its result and dead letter as JSON. Null fields are left out, so a column
    /// a later migration adds (NULL on existing rows) does not count as a change.
    func snapshot(_ postgres: PostgresClient, _ ids: [UUID]) async throws -> [UUID: String] {
        let rows = try await postgres.query("""
            SELECT j.id, jsonb_strip_nulls(jsonb_build_object('job', to_jsonb(j), 'result', to_jsonb(r), 'dead', to_jsonb(d)))::text
              FROM sluice.jobs j LEFT JOIN sluice.results r ON r.job_id = j.id LEFT JOIN sluice.dead_letters d ON d.job_id = j.id
             WHERE j.id = ANY($1)
            """, [ids])
        var result: [UUID: String] = [:]
        for row in rows { result[try row.decode(UUID.self, at: 0)] = try row.decode(String.self, at: 1) }
        #expect(result.count == ids.count)
        return result
    }
}
