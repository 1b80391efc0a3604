public import Foundation
import SluicePostgres

extension JobStore {
    /// The numbers `sluice stats` shows, read in one transaction-consistent pass (REPEATABLE
    /// READ, read only).
    public func stats() async throws(SluiceError) -> QueueStats {
        try await run("stats") {
            try await postgres.withConnection { connection in
                _ = try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                do {
                    let stats = try await Self.readStats(connection)
                    _ = try await connection.query("COMMIT")
                    return stats
                } catch {
                    _ = try? await connection.query("ROLLBACK")
                    throw error
                }
            }
        }
    }

    private static func readStats(_ connection: PostgresConnection) async throws -> QueueStats {
        let states = try await connection.query("SELECT state::text AS state, count(*) AS n FROM sluice.jobs GROUP BY state")
        var byState: [String: Int] = [:]
        for row in states.rows { byState[try row.decode(String.self, column: "state")] = try row.decode(Int.self, column: "n") }

        let lanes = try await connection.query("""
            SELECT l.lane::text AS lane,
                   (SELECT count(*) FROM sluice.jobs j WHERE j.state = 'queued' AND j.lane = l.lane) AS queued,
                   (SELECT count(*) FROM sluice.jobs j WHERE j.state = 'running' AND j.lane = l.lane) AS running
              FROM unnest(enum_range(NULL::sluice.lane)) AS l(lane)
            """)
        let tenants = try await connection.query("""
            SELECT tenant, sum(queued)::bigint AS queued, sum(running)::bigint AS running FROM (
                SELECT tenant, 1 AS queued, 0 AS running FROM sluice.jobs WHERE state = 'queued'
                UNION ALL
                SELECT tenant, 0, 1 FROM sluice.jobs WHERE state = 'running') x
             GROUP BY tenant ORDER BY sum(queued) DESC, tenant LIMIT 20
            """)
        // The last 15 minutes' finished jobs through the two partial indexes of finished jobs
        // (0010: one per retention), not a scan of the history.
        let misc = try await connection.query("""
            SELECT (SELECT extract(epoch FROM now() - min(run_at))::float8 FROM sluice.jobs
                     WHERE state = 'queued' AND run_at <= now()) AS oldest,
                   count(*) FILTER (WHERE state = 'succeeded' AND finished_at > now() - interval '1 minute') AS s1,
                   count(*) FILTER (WHERE state = 'succeeded' AND finished_at > now() - interval '5 minutes') AS s5,
                   count(*) FILTER (WHERE state = 'succeeded') AS s15,
                   count(*) FILTER (WHERE state = 'dead' AND finished_at > now() - interval '1 minute') AS d1,
                   count(*) FILTER (WHERE state = 'dead' AND finished_at > now() - interval '5 minutes') AS d5,
                   count(*) FILTER (WHERE state = 'dead') AS d15,
                   (SELECT count(*) FROM sluice.dead_letters WHERE replayed_at IS NULL) AS dead_letters,
                   (SELECT count(*) FROM sluice.workers WHERE last_heartbeat_at > now() - interval '60 seconds') AS workers,
                   (SELECT coalesce(sum(concurrency), 0) FROM sluice.workers
                     WHERE last_heartbeat_at > now() - interval '60 seconds') AS worker_slots,
                   (SELECT count(*) FROM sluice.webhook_deliveries WHERE state = 'pending') AS webhooks_pending,
                   (SELECT count(*) FROM sluice.webhook_deliveries WHERE state = 'failed') AS webhooks_failed
              FROM (SELECT state, finished_at FROM sluice.jobs
                     WHERE state IN ('succeeded', 'cancelled') AND finished_at > now() - interval '15 minutes'
                    UNION ALL
                    SELECT state, finished_at FROM sluice.jobs
                     WHERE state = 'dead' AND finished_at > now() - interval '15 minutes') f
            """)
        let m = misc.rows[0]
        return QueueStats(
            queued: byState["queued"] ?? 0, running: byState["running"] ?? 0, succeeded: byState["succeeded"] ?? 0,
            dead: byState["dead"] ?? 0, cancelled: byState["cancelled"] ?? 0,
            byLane: try lanes.rows.map { (try $0.decode(String.self, column: "lane"), try $0.decode(Int.self, column: "queued"),
                                          try $0.decode(Int.self, column: "running")) },
            byTenant: try tenants.rows.map { (try $0.decode(String.self, column: "tenant"), try $0.decode(Int.self, column: "queued"),
                                              try $0.decode(Int.self, column: "running")) },
            oldestQueuedSeconds: try m.decode(Double?.self, column: "oldest"),
            succeededLast: (try m.decode(Int.self, column: "s1"), try m.decode(Int.self, column: "s5"), try m.decode(Int.self, column: "s15")),
            deadLast: (try m.decode(Int.self, column: "d1"), try m.decode(Int.self, column: "d5"), try m.decode(Int.self, column: "d15")),
            deadLetters: try m.decode(Int.self, column: "dead_letters"),
            workers: try m.decode(Int.self, column: "workers"), workerSlots: try m.decode(Int.self, column: "worker_slots"),
            webhooksPending: try m.decode(Int.self, column: "webhooks_pending"),
            webhooksFailed: try m.decode(Int.self, column: "webhooks_failed"))
    }

    /// Jobs for operators: any tenant (or one), filtered by state, lane and creation time,
    /// newest first, after the job `after` (keyset pagination).
    public func listJobs(tenant: String?, state: JobState?, lane: Lane?, since: Date?, limit: Int,
                         after: UUID?) async throws(SluiceError) -> [Job] {
        // The state is written into the statement (a fixed raw value, never caller text) so the
        // planner can use the partial indexes (see jobs(tenant:…)).
        let stateCondition = state.map { "state = '\($0.rawValue)'" } ?? "true"
        return try await run("listJobs") {
            try await postgres.query("""
                SELECT \(unescaped: Job.storeColumns) FROM sluice.jobs
                 WHERE (\(tenant)::text IS NULL OR tenant = \(tenant)) AND \(unescaped: stateCondition)
                   AND (\(lane?.rawValue)::text IS NULL OR lane::text = \(lane?.rawValue))
                   AND (\(since)::timestamptz IS NULL OR created_at >= \(since))
                   AND (\(after)::uuid IS NULL OR id < \(after))
                 ORDER BY id DESC LIMIT \(limit)
                """).rows.map(Job.init(storeRow:))
        }
    }
}
