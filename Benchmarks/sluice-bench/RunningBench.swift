import ArgumentParser
import Foundation
import SluicePostgres

extension Bench {
    /// Claim latency against the number of running jobs (`--only running`): per count, a fresh
    /// database with one tenant holding `count` running jobs (claimed by a holder worker with a
    /// one-hour lease) and 20,000 queued; then `claims` claims of 128 jobs, each in a
    /// transaction rolled back, so every claim sees the same state. A claim serialises all
    /// claimers (the claim lock), so its cost is paid once per claim by the whole cluster.
    func runningClaims(counts: [Int], claims: Int, override: String?) async throws {
        print("claim of 128 jobs against the tenant's running jobs (load \(loadAverage())):")
        for count in counts {
            let db = try await freshDatabase("running")
            try await applyOverride(db.postgres, override)
            _ = try await db.postgres.query("INSERT INTO sluice.tenants (id, max_concurrency) VALUES ('busy', 1000000)")
            let queued = count + 20_000
            // The enqueue path's triggers stay on: depth and running counters, fair queue.
            _ = try await db.postgres.query(PostgresQuery(unsafeSQL: """
                INSERT INTO sluice.jobs (id, tenant, lane, provider, model, request, run_at)
                SELECT sluice.uuid_v7(), 'busy', 'normal', 'echo', 'echo',
                       jsonb_build_object('messages', jsonb_build_array(jsonb_build_object('role', 'user',
                           'content', 'queued job ' || g.i || ' with a realistic short prompt'))),
                       now() - interval '1 minute'
                  FROM generate_series(1, \(queued)) AS g(i)
                """))
            if count > 0 {
                _ = try await db.postgres.query(PostgresQuery(unsafeSQL: """
                    SELECT count(*) FROM sluice.claim('holder', \(count), '{interactive,high,normal,batch}', NULL, interval '1 hour')
                    """))
            }
            try await db.postgres.withConnection { connection in
                try await connection.execute("VACUUM (ANALYZE) sluice.jobs")
                try await connection.execute("VACUUM (ANALYZE) sluice.tenant_queue_depth")
            }
            let times = try await db.postgres.withConnection { connection in
                var times: [Double] = []
                for _ in 0..<(claims + 2) {
                    try await connection.execute("BEGIN")
                    let t0 = clock.now
                    let claimed = try await connection.query("""
                        SELECT count(*)::int FROM sluice.claim('bench', 128, '{interactive,high,normal,batch}', NULL, interval '30 seconds')
                        """, []).rows[0].decode(Int.self, at: 0)
                    let elapsed = seconds(clock.now - t0) * 1000
                    try await connection.execute("ROLLBACK")
                    guard claimed == 128 else { throw ValidationError("a claim took \(claimed) jobs, not 128") }
                    times.append(elapsed)
                }
                return times
            }
            // The first two calls of a session plan the claim's statements.
            let stats = Stats(samples: Array(times.dropFirst(2)))
            print(String(format: "  %6d running: claim p50 %.2f ms, p90 %.2f ms (%d claims)", count, stats.percentile(0.5),
                         stats.percentile(0.9), claims))
        }
    }
}
