import Foundation
import Sluice
import SluiceJSON
import SluicePostgres

/// What one history run measured.
struct HistoryFigures {
    var history: Int
    var queued: Int
    var fillSeconds: Double
    var claim: Stats
    var finish: Stats
    var enqueuePerSecond: Double
    var enqueueCall: Stats
    var lists: [(name: String, stats: Stats)]
    var prune: Stats
    var jobsHeapMB: Double
    var jobsIndexesMB: Double
    var claimIndexMB: Double
    var historyMB: Double
}

extension Bench {
    /// A job id of the fill: UUIDv7 layout (the millisecond of `ts`, then `i`), so fill ids sort
    /// by creation as the enqueue path's ids do, and `i` makes them unique.
    static func fillID(ts: String, i: String) -> String {
        """
        (lpad(to_hex((extract(epoch FROM \(ts)) * 1000)::bigint), 12, '0') || '7' || lpad(to_hex(\(i) % 4096), 3, '0') \
        || '8' || lpad(to_hex(\(i)), 15, '0'))::uuid
        """
    }

    /// Fills `history` finished jobs spread over the 6 days before `base` (inside the default
    /// 7-day retention, so pruning has nothing to delete: every prune round is a no-op, as
    /// it is most of the time in production): 99 % succeeded with a result row, 1 % dead with
    /// a dead letter; then `queued` queued jobs created in the last minute. Bare SQL (INSERT …
    /// SELECT generate_series), not the enqueue path: the finished rows with triggers off (they
    /// change no queue-depth counter), the queued ones with triggers on (depth counters and fair
    /// queue kept as the enqueue path keeps them).
    func fillHistory(_ postgres: PostgresClient, history: Int, queued: Int, tenants: Int) async throws -> Double {
        let start = clock.now
        let chunk = 500_000
        try await postgres.withConnection { connection in
            try await connection.execute("SET session_replication_role = replica")
            var lo = 1
            while lo <= history {
                let hi = min(history, lo + chunk - 1)
                let ts = "(timestamptz '\(Self.fillBase)' - interval '6 days' + (g.i - 1) * (interval '6 days' / \(history)))"
                try await connection.execute("""
                    WITH ins AS (
                        INSERT INTO sluice.jobs (id, tenant, lane, state, provider, model, request, run_at, attempt, max_attempts,
                                                 last_error_class, last_error, created_at, started_at, finished_at)
                        SELECT \(Self.fillID(ts: ts, i: "g.i")), 'tenant-' || (g.i % \(tenants)), 'normal',
                               CASE WHEN (g.i / 10) % 100 = 3 THEN 'dead' ELSE 'succeeded' END::sluice.job_state, 'echo', 'echo',
                               jsonb_build_object('messages', jsonb_build_array(jsonb_build_object('role', 'user',
                                   'content', 'history job ' || g.i || ' with a realistic short prompt'))),
                               \(ts), CASE WHEN (g.i / 10) % 100 = 3 THEN 5 ELSE 1 END, 5,
                               CASE WHEN (g.i / 10) % 100 = 3 THEN 'server_error' END, CASE WHEN (g.i / 10) % 100 = 3 THEN 'upstream 500' END,
                               \(ts), \(ts), \(ts) + interval '1 second'
                          FROM generate_series(\(lo), \(hi)) AS g(i)
                        RETURNING id, tenant, state, finished_at
                    ), res AS (
                        INSERT INTO sluice.results (job_id, tenant, output_text, finish_reason, input_tokens, output_tokens,
                                                    provider, model, latency_ms, created_at)
                        SELECT id, tenant, 'echo: history job', 'stop', 14, 4, 'echo', 'echo', 1.0, finished_at
                          FROM ins WHERE state = 'succeeded'
                    )
                    INSERT INTO sluice.dead_letters (job_id, tenant, error_class, reason, last_error, attempts, dead_at)
                    SELECT id, tenant, 'server_error', 'attempts_exhausted', 'upstream 500', 5, finished_at
                      FROM ins WHERE state = 'dead'
                    """)
                lo = hi + 1
                print(String(format: "  filled %d of %d finished jobs (%.0f s)", hi, history, seconds(clock.now - start)))
            }
            try await connection.execute("SET session_replication_role = origin")
            lo = 1
            while lo <= queued {
                let hi = min(queued, lo + chunk - 1)
                let ts = "(timestamptz '\(Self.fillBase)' - interval '1 minute' + (g.i - 1) * (interval '50 seconds' / \(queued)))"
                try await connection.execute("""
                    INSERT INTO sluice.jobs (id, tenant, lane, provider, model, request, metadata, run_at, created_at)
                    SELECT \(Self.fillID(ts: ts, i: "(\(history) + g.i)")), 'tenant-' || (g.i % \(tenants)), 'normal', 'echo', 'echo',
                           jsonb_build_object('messages', jsonb_build_array(jsonb_build_object('role', 'user',
                               'content', 'queued job ' || g.i || ' with a realistic short prompt'))),
                           '{"echo_delay_ms": 1}', \(ts), \(ts)
                      FROM generate_series(\(lo), \(hi)) AS g(i)
                    """)
                lo = hi + 1
            }
            print(String(format: "  filled %d queued jobs (%.0f s)", queued, seconds(clock.now - start)))
            // The state a long-running table is in (visibility map set, statistics taken), the
            // same for both sizes; and no checkpoint of the fill's WAL during the measurements.
            try await connection.execute("VACUUM (ANALYZE) sluice.jobs")
            try await connection.execute("VACUUM (ANALYZE) sluice.results")
            try await connection.execute("VACUUM (ANALYZE) sluice.dead_letters")
            try await connection.execute("CHECKPOINT")
        }
        return seconds(clock.now - start)
    }

    /// The fill's reference time, fixed for the whole run so ids can be recomputed.
    static let fillBase: String = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }()

    /// Claim latency, enqueue rate, `sluice jobs list` latency and a retention round with
    /// `history` finished jobs plus `queued` queued ones (one fresh database).
    func historyRun(history: Int, queued: Int, tenants: Int, claims: Int, enqueueSeconds: Int, lists: Int,
                    explain: Bool, override: String?) async throws -> HistoryFigures {
        let db = try await freshDatabase("history")
        try await applyOverride(db.postgres, override)
        try await createTenants(db.postgres, count: tenants)
        print("history \(history) finished + \(queued) queued (load \(loadAverage())):")
        let fill = try await fillHistory(db.postgres, history: history, queued: queued, tenants: tenants)
        let store = db.client.store

        // Claims as a worker issues them (up to 64), each finished at once, back to back.
        var claimTimes: [Double] = []
        var finishTimes: [Double] = []
        for _ in 0..<claims {
            let t0 = clock.now
            let jobs = try await store.claim(.init(
                worker: "bench-history", limit: 64, lanes: Lane.allCases, tenants: nil, lease: .seconds(30),
                starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
            claimTimes.append(seconds(clock.now - t0) * 1000)
            let outcomes = jobs.map { job in
                var outcome = AttemptOutcome(jobID: job.id, attempt: job.attempt, kind: .succeeded, startedAt: Date(),
                                             duration: .milliseconds(1))
                outcome.usage = Usage(inputTokens: 1, outputTokens: 1)
                outcome.result = ProviderResult(
                    text: "ok", finishReason: "stop", rawResponse: [], usage: Usage(inputTokens: 1, outputTokens: 1),
                    costUSD: nil, model: "echo", provider: "echo", latency: .milliseconds(1), timeToFirstToken: nil)
                return outcome
            }
            let t1 = clock.now
            _ = try await store.finishAttempts(worker: "bench-history", outcomes: outcomes)
            finishTimes.append(seconds(clock.now - t1) * 1000)
        }

        // Enqueue: one connection, sluice.enqueue_batch of 128 jobs back to back.
        let payload = specArray(count: 128, tenants: tenants, delayMs: 1)
        var callTimes: [Double] = []
        var enqueued = 0
        let enqueueStart = clock.now
        while clock.now < enqueueStart + .seconds(enqueueSeconds) {
            let t0 = clock.now
            enqueued += try await store.enqueueBatchFunction(payload)
            callTimes.append(seconds(clock.now - t0) * 1000)
        }
        let enqueueRate = Double(enqueued) / seconds(clock.now - enqueueStart)

        // `sluice jobs list --tenant tenant-3 [--state …] [--after …] --limit 50`: the store
        // method the CLI calls.
        let middle = try await db.postgres.query(PostgresQuery(unsafeSQL: """
            SELECT \(Self.fillID(ts: "(timestamptz '\(Self.fillBase)' - interval '3 days')", i: "\(history / 2)"))
            """)).rows[0].decode(UUID.self, at: 0)
        let variants: [(String, JobState?, UUID?)] = [
            ("(no filter)", nil, nil), ("--state succeeded", .succeeded, nil), ("--state dead", .dead, nil),
            ("--state queued", .queued, nil), ("--after <id 3 days back>", nil, middle),
        ]
        var listFigures: [(String, Stats)] = []
        for (name, state, after) in variants {
            var times: [Double] = []
            for _ in 0..<lists {
                let t0 = clock.now
                _ = try await store.listJobs(tenant: "tenant-3", state: state, lane: nil, since: nil, limit: 50, after: after)
                times.append(seconds(clock.now - t0) * 1000)
            }
            listFigures.append((name, Stats(samples: times)))
        }

        // A retention round of the elected pruner with nothing past the retention (the usual case).
        var pruneTimes: [Double] = []
        for _ in 0..<3 {
            let t0 = clock.now
            _ = try await store.pruneBatch(retention: .seconds(7 * 86_400), deadRetention: .seconds(30 * 86_400), limit: 1000)
            pruneTimes.append(seconds(clock.now - t0) * 1000)
        }

        if explain {
            // The prune's victim scan (succeeded and cancelled jobs) as its SQL function runs
            // it: a generic plan (parameters, not constants).
            let statements = [
                "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM sluice.jobs WHERE tenant = 'tenant-3' AND state = 'dead' ORDER BY id DESC LIMIT 50",
                "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM sluice.jobs WHERE tenant = 'tenant-3' AND state = 'queued' ORDER BY id DESC LIMIT 50",
                "EXPLAIN (ANALYZE, BUFFERS) EXECUTE victims(now() - interval '7 days', now() - interval '30 days', 1000)",
                "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM sluice.jobs WHERE tenant = 'tenant-3' AND state = 'succeeded' ORDER BY id DESC LIMIT 50",
            ]
            try await db.postgres.withConnection { connection in
                try await connection.execute("""
                    SET plan_cache_mode = force_generic_plan;
                    PREPARE victims(timestamptz, timestamptz, integer) AS
                    SELECT j.id FROM sluice.jobs j
                     WHERE j.state IN ('succeeded', 'cancelled') AND j.finished_at < $1
                     ORDER BY j.finished_at LIMIT $3 FOR UPDATE SKIP LOCKED
                    """)
                for sql in statements {
                    print("  " + sql)
                    for row in try await connection.query(PostgresQuery(unsafeSQL: sql)).rows {
                        print("    " + (try row.decode(String.self, at: 0)))
                    }
                }
                try await connection.execute("DEALLOCATE victims; RESET plan_cache_mode")
            }
        }

        let sizes = try await db.postgres.query("""
            SELECT pg_table_size('sluice.jobs')::int8, pg_indexes_size('sluice.jobs')::int8,
                   pg_relation_size('sluice.jobs_claim_idx')::int8,
                   (pg_total_relation_size('sluice.results') + pg_total_relation_size('sluice.dead_letters'))::int8
            """).rows[0]
        let figures = HistoryFigures(
            history: history, queued: queued, fillSeconds: fill, claim: Stats(samples: claimTimes),
            finish: Stats(samples: finishTimes), enqueuePerSecond: enqueueRate, enqueueCall: Stats(samples: callTimes),
            lists: listFigures, prune: Stats(samples: pruneTimes),
            jobsHeapMB: Double(try sizes.decode(Int.self, at: 0)) / 1e6, jobsIndexesMB: Double(try sizes.decode(Int.self, at: 1)) / 1e6,
            claimIndexMB: Double(try sizes.decode(Int.self, at: 2)) / 1e6, historyMB: Double(try sizes.decode(Int.self, at: 3)) / 1e6)
        print(String(format: "  claim p50 %.1f p99 %.1f ms; enqueue %.0f jobs/s; list newest p50 %.2f ms; prune round p50 %.1f ms",
                     figures.claim.percentile(0.5), figures.claim.percentile(0.99), enqueueRate,
                     listFigures[0].1.percentile(0.5), figures.prune.percentile(0.5)))
        await db.client.shutdown()
        return figures
    }

    func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// Ten million jobs of history: the same measurements with `small` and with `large` finished
    /// jobs, each beside `queued` queued jobs; the large/small ratio per figure (target ≤ 1.5×).
    func history(small: Int, large: Int, queued: Int, tenants: Int, claims: Int, enqueueSeconds: Int, lists: Int,
                 explain: Bool, override: String?) async throws {
        // Small, large, small again: the machine is shared, so the small history is measured on
        // both sides of the large one and the ratio is taken against the mean of the two.
        let a = try await historyRun(history: small, queued: queued, tenants: tenants, claims: claims,
                                     enqueueSeconds: enqueueSeconds, lists: lists, explain: explain, override: override)
        let b = try await historyRun(history: large, queued: queued, tenants: tenants, claims: claims,
                                     enqueueSeconds: enqueueSeconds, lists: lists, explain: explain, override: override)
        let c = try await historyRun(history: small, queued: queued, tenants: tenants, claims: claims,
                                     enqueueSeconds: enqueueSeconds, lists: lists, explain: false, override: override)
        func n(_ v: Int) -> String { v >= 1_000_000 ? "\(v / 1_000_000)M" : v >= 1000 ? "\(v / 1000)k" : "\(v)" }
        print("""

            ### History: \(n(small)) vs \(n(large)) finished jobs (99 % succeeded with a result, 1 % dead with a dead letter), \
            \(n(queued)) queued, \(tenants) tenants (load \(loadAverage()))

            | | \(n(small)) finished | \(n(large)) finished | \(n(small)) finished again | ratio large / mean of small |
            |---|---:|---:|---:|---:|
            """)
        func row(_ name: String, _ f: (HistoryFigures) -> Double, _ format: String = "%.2f") {
            let (x, y, z) = (f(a), f(b), f(c))
            print("| \(name) | \(String(format: format, x)) | \(String(format: format, y)) | \(String(format: format, z)) | \(String(format: "%.2f×", y / ((x + z) / 2))) |")
        }
        row("claim of ≤ 64, p50 (ms)") { $0.claim.percentile(0.5) }
        row("claim of ≤ 64, p99 (ms)") { $0.claim.percentile(0.99) }
        row("completion of 64 (finish_attempts), p50 (ms)") { $0.finish.percentile(0.5) }
        row("enqueue_batch of 128, jobs/s (one connection)", { $0.enqueuePerSecond }, "%.0f")
        row("enqueue_batch of 128, p99 (ms)") { $0.enqueueCall.percentile(0.99) }
        for (k, variant) in a.lists.enumerated() {
            row("jobs list --tenant tenant-3 \(variant.name) --limit 50, p50 (ms)") { $0.lists[k].stats.percentile(0.5) }
            row("jobs list --tenant tenant-3 \(variant.name) --limit 50, p99 (ms)") { $0.lists[k].stats.percentile(0.99) }
        }
        row("retention round with nothing to prune (ms)") { $0.prune.percentile(0.5) }
        row("jobs heap (MB)", { $0.jobsHeapMB }, "%.0f")
        row("jobs indexes (MB)", { $0.jobsIndexesMB }, "%.0f")
        row("claim index (MB)", { $0.claimIndexMB }, "%.1f")
        row("results + dead letters (MB)", { $0.historyMB }, "%.0f")
        row("fill + VACUUM ANALYZE (s)", { $0.fillSeconds }, "%.0f")
    }
}
