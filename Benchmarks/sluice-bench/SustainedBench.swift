import Foundation
import Sluice
import SluiceJSON
import SluicePostgres
import SluiceSupport

/// The state of `sluice.jobs` and the counters the sustained and burst runs sample.
struct QueueSnapshot {
    /// Finished attempts so far (`sum(usage_daily.requests)`: one per recorded attempt; the echo
    /// provider always succeeds, so one per completed job). Cheap: a few rows.
    var completions: Int
    /// Queued jobs (the trigger-kept depth counters).
    var depth: Int
    var tableBytes: Int
    var indexBytes: Int
    /// `sluice.results` + `sluice.attempts`, indexes included.
    var historyBytes: Int
    var liveTuples: Int
    var deadTuples: Int
    var autovacuums: Int
    var autoanalyzes: Int
    var updates: Int
    var hotUpdates: Int
    var checkpoints: Int

    static func read(_ postgres: PostgresClient) async throws -> QueueSnapshot {
        let row = try await postgres.query("""
            SELECT (SELECT coalesce(sum(requests), 0) FROM sluice.usage_daily)::int8,
                   (SELECT coalesce(sum(queued), 0) FROM sluice.tenant_queue_depth)::int8,
                   pg_table_size('sluice.jobs')::int8, pg_indexes_size('sluice.jobs')::int8,
                   (pg_total_relation_size('sluice.results') + pg_total_relation_size('sluice.attempts'))::int8,
                   s.n_live_tup::int8, s.n_dead_tup::int8, s.autovacuum_count::int8, s.autoanalyze_count::int8,
                   s.n_tup_upd::int8, s.n_tup_hot_upd::int8,
                   (SELECT checkpoints_req + checkpoints_timed FROM pg_stat_bgwriter)::int8
              FROM pg_stat_user_tables s WHERE s.relid = 'sluice.jobs'::regclass
            """).rows[0]
        return QueueSnapshot(
            completions: try row.decode(Int.self, at: 0), depth: try row.decode(Int.self, at: 1),
            tableBytes: try row.decode(Int.self, at: 2), indexBytes: try row.decode(Int.self, at: 3),
            historyBytes: try row.decode(Int.self, at: 4), liveTuples: try row.decode(Int.self, at: 5),
            deadTuples: try row.decode(Int.self, at: 6), autovacuums: try row.decode(Int.self, at: 7),
            autoanalyzes: try row.decode(Int.self, at: 8), updates: try row.decode(Int.self, at: 9),
            hotUpdates: try row.decode(Int.self, at: 10), checkpoints: try row.decode(Int.self, at: 11))
    }
}

/// One sample of the sustained run.
struct SustainedSample {
    var end: Double
    var completionsPerSecond: Double
    var enqueuesPerSecond: Double
    var claim: Stats
    var snapshot: QueueSnapshot
    var hotPercent: Double
}

extension Bench {
    /// A JSON array of `count` echo specs over `tenants` tenants, as `sluice.enqueue_batch` takes it.
    func specArray(count: Int, tenants: Int, delayMs: Int, lane: String = "normal", offset: Int = 0) -> PostgresJSON {
        var writer = JSONWriter(capacity: count * 220)
        writer.beginArray()
        for i in offset..<(offset + count) {
            writer.raw(Array(#"{"tenant":"tenant-\#(i % tenants)","lane":"\#(lane)","provider":"echo","model":"echo","request":{"messages":[{"role":"user","content":"sustained job \#(i) with a realistic short prompt"}]},"metadata":{"echo_delay_ms":\#(delayMs)}}"#.utf8))
        }
        writer.endArray()
        return PostgresJSON(bytes: writer.bytes)
    }

    /// Applies `--after-migrate-sql` (an older definition of some functions, for before/after
    /// comparisons on one build).
    func applyOverride(_ postgres: PostgresClient, _ path: String?) async throws {
        guard let path else { return }
        let sql = try String(contentsOfFile: path, encoding: .utf8)
        try await postgres.withConnection { connection in
            try await connection.execute(sql)
        }
        print("  (functions replaced from \(path) after migrating)")
    }

    func createTenants(_ postgres: PostgresClient, count: Int) async throws {
        _ = try await postgres.query("""
            INSERT INTO sluice.tenants (id, max_concurrency)
            SELECT 'tenant-' || i, 100000 FROM generate_series(0, \(count - 1)) i
            ON CONFLICT (id) DO UPDATE SET max_concurrency = 100000
            """)
    }

    // MARK: Sustained load

    /// Producers keep the queue near `depth` through the public SQL API (`sluice.enqueue_batch`,
    /// `batch` jobs per call) while `sluice worker --processes P --concurrency C` drains it, for
    /// `minutes`. Every `sampleSeconds`: completions/s, enqueues/s, claim latency (a probe in
    /// this process claims up to 64 jobs every 100 ms through `sluice.claim`, as a worker does,
    /// and finishes them at once), queue depth, table and index sizes, dead tuples, autovacuum
    /// and analyze counts, the HOT share of updates and checkpoints.
    func sustained(minutes: Double, processes: Int, concurrency: Int, depth target: Int, batch: Int, producers: Int,
                   delayMs: Int, tenants: Int, sampleSeconds: Int, plot: String?, override: String?) async throws {
        let db = try await freshDatabase("sustained")
        try await applyOverride(db.postgres, override)
        try await createTenants(db.postgres, count: tenants)
        let store = db.client.store
        let workers = try startWorkers(url: db.url, processes: processes, concurrency: concurrency)
        defer { stop(workers) }
        try await Task.sleep(for: .seconds(2))

        let end = clock.now + .seconds(minutes * 60)
        let enqueued = Locked(0)
        let claimSamples = Locked<[Double]>([])
        let payloads = (0..<producers).map { specArray(count: batch, tenants: tenants, delayMs: delayMs, offset: $0 * batch) }
        let postgres = db.postgres
        let clock = clock
        let samples = try await withThrowingTaskGroup(of: [SustainedSample].self) { group in
            for payload in payloads {
                group.addTask {
                    while clock.now < end {
                        let depth = try await postgres.query("SELECT coalesce(sum(queued), 0)::int8 FROM sluice.tenant_queue_depth")
                            .rows[0].decode(Int.self, at: 0)
                        if depth >= target {
                            try await Task.sleep(for: .milliseconds(2))
                            continue
                        }
                        let n = try await store.enqueueBatchFunction(payload)
                        enqueued.withLock { $0 += n }
                    }
                    return []
                }
            }
            group.addTask {
                while clock.now < end {
                    let start = clock.now
                    let jobs = try await store.claim(.init(
                        worker: "bench-probe", limit: 64, lanes: Lane.allCases, tenants: nil, lease: .seconds(30),
                        starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
                    let elapsed = seconds(clock.now - start) * 1000
                    claimSamples.withLock { $0.append(elapsed) }
                    if !jobs.isEmpty {
                        let outcomes = jobs.map { job in
                            var outcome = AttemptOutcome(jobID: job.id, attempt: job.attempt, kind: .succeeded, startedAt: Date(),
                                                         duration: .milliseconds(1))
                            outcome.usage = Usage(inputTokens: 1, outputTokens: 1)
                            outcome.result = ProviderResult(
                                text: "ok", finishReason: "stop", rawResponse: [], usage: Usage(inputTokens: 1, outputTokens: 1),
                                costUSD: nil, model: "echo", provider: "echo", latency: .milliseconds(1), timeToFirstToken: nil)
                            return outcome
                        }
                        _ = try await store.finishAttempts(worker: "bench-probe", outcomes: outcomes)
                    }
                    try await Task.sleep(until: start + .milliseconds(100), clock: clock)
                }
                return []
            }
            group.addTask {
                var samples: [SustainedSample] = []
                var last = try await QueueSnapshot.read(postgres)
                var lastEnqueued = 0
                let start = clock.now
                var next = start
                print("  t(s)  done/s  enq/s  claim p50/p99 ms  depth  jobs MB  idx MB  dead  HOT%  autovac/analyze")
                while clock.now < end {
                    next += .seconds(sampleSeconds)
                    try await Task.sleep(until: next, clock: clock)
                    let now = try await QueueSnapshot.read(postgres)
                    let total = enqueued.current
                    let claims = claimSamples.withLock { samples -> [Double] in
                        defer { samples = [] }
                        return samples
                    }
                    let updates = now.updates - last.updates
                    let sample = SustainedSample(
                        end: seconds(clock.now - start),
                        completionsPerSecond: Double(now.completions - last.completions) / Double(sampleSeconds),
                        enqueuesPerSecond: Double(total - lastEnqueued) / Double(sampleSeconds),
                        claim: Stats(samples: claims), snapshot: now,
                        hotPercent: updates > 0 ? 100 * Double(now.hotUpdates - last.hotUpdates) / Double(updates) : .nan)
                    print(String(format: "  %4.0f  %6.0f  %5.0f  %6.1f / %6.1f  %5d  %7.1f  %6.1f  %6d  %4.0f  %d/%d",
                                 sample.end, sample.completionsPerSecond, sample.enqueuesPerSecond,
                                 sample.claim.percentile(0.5), sample.claim.percentile(0.99), now.depth,
                                 Double(now.tableBytes) / 1e6, Double(now.indexBytes) / 1e6, now.deadTuples,
                                 sample.hotPercent, now.autovacuums, now.autoanalyzes))
                    samples.append(sample)
                    last = now
                    lastEnqueued = total
                }
                return samples
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let finalCounts = try await db.postgres.query(
            "SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE state NOT IN ('succeeded')) FROM sluice.jobs").rows[0]
        let succeeded = try finalCounts.decode(Int.self, at: 0)
        let unfinished = try finalCounts.decode(Int.self, at: 1)
        // Jobs claimed together share jobs.started_at (the claim transaction's start): distinct
        // values count the claims (the probe's ~10 per second included).
        let claimRow = try await db.postgres.query(
            "SELECT count(DISTINCT started_at), count(*) FROM sluice.jobs WHERE state = 'succeeded'").rows[0]
        let claims = try claimRow.decode(Int.self, at: 0)
        print(String(format: "claims: %d (%.1f per s), %.1f jobs per claim (jobs sharing one started_at; the probe's claims included)",
                     claims, Double(claims) / (minutes * 60), Double(try claimRow.decode(Int.self, at: 1)) / Double(max(claims, 1))))
        reportSustained(samples, minutes: minutes, processes: processes, concurrency: concurrency, depth: target,
                        batch: batch, producers: producers, delayMs: delayMs, tenants: tenants, sampleSeconds: sampleSeconds,
                        succeeded: succeeded, unfinished: unfinished, plot: plot)
        await db.client.shutdown()
    }

    func reportSustained(_ samples: [SustainedSample], minutes: Double, processes: Int, concurrency: Int, depth: Int, batch: Int,
                         producers: Int, delayMs: Int, tenants: Int, sampleSeconds: Int, succeeded: Int, unfinished: Int,
                         plot: String?) {
        guard !samples.isEmpty else { return }
        print("""

            ### Sustained load: \(producers) producers (sluice.enqueue_batch, \(batch) jobs per call, queue held near \(depth)), \
            sluice worker --processes \(processes) --concurrency \(concurrency), echo \(delayMs) ms, \(tenants) tenants, \
            \(String(format: "%.0f", minutes * 60)) s

            | t (s) | completions/s | enqueues/s | claim p50 / p99 (ms) | queue depth | jobs heap (MB) | jobs indexes (MB) | results + attempts (MB) | live / dead tuples | HOT updates | autovacuum / autoanalyze (total) | checkpoints (total) |
            |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
            """)
        for s in samples {
            print(String(format: "| %.0f | %.0f | %.0f | %.1f / %.1f | %d | %.1f | %.1f | %.1f | %d / %d | %.0f %% | %d / %d | %d |",
                         s.end, s.completionsPerSecond, s.enqueuesPerSecond, s.claim.percentile(0.5), s.claim.percentile(0.99),
                         s.snapshot.depth, Double(s.snapshot.tableBytes) / 1e6, Double(s.snapshot.indexBytes) / 1e6,
                         Double(s.snapshot.historyBytes) / 1e6, s.snapshot.liveTuples, s.snapshot.deadTuples, s.hotPercent,
                         s.snapshot.autovacuums, s.snapshot.autoanalyzes, s.snapshot.checkpoints))
        }
        let perMinute = max(1, 60 / sampleSeconds)
        let first = samples.prefix(perMinute).map(\.completionsPerSecond)
        let last = samples.suffix(perMinute).map(\.completionsPerSecond)
        let firstMean = first.reduce(0, +) / Double(first.count)
        let lastMean = last.reduce(0, +) / Double(last.count)
        let allClaims = samples.map { $0.claim.percentile(0.99) }.filter(\.isFinite)
        let bytesPerJob = samples.map { Double($0.snapshot.tableBytes + $0.snapshot.indexBytes) / Double(max($0.snapshot.liveTuples, 1)) }
        print(String(format: """

            first minute %.0f completions/s, last minute %.0f (%.0f %%; target ≥ 90 %%); worst 10 s claim p99 %.1f ms \
            (target ≤ 25 ms); jobs heap + indexes per live row %.0f B at the first sample, %.0f B at the last; \
            %d jobs succeeded, %d not finished when the run stopped
            """, firstMean, lastMean, 100 * lastMean / max(firstMean, 1), allClaims.max() ?? .nan,
                     bytesPerJob.first ?? .nan, bytesPerJob.last ?? .nan, succeeded, unfinished))
        guard let plot else { return }
        let chart = SVGPlot(
            title: "Sustained load: \(processes) × \(concurrency) slots, echo \(delayMs) ms, depth ≈ \(depth), \(batch) jobs per enqueue_batch",
            xLabel: "seconds since the start (\(sampleSeconds) s samples)",
            panels: [
                .init(title: "Throughput", unit: "jobs/s", series: [
                    .init(name: "completions/s", color: "#1f77b4", points: samples.map { ($0.end, $0.completionsPerSecond) }),
                    .init(name: "enqueues/s", color: "#ff7f0e", points: samples.map { ($0.end, $0.enqueuesPerSecond) }),
                ]),
                .init(title: "Claim latency (probe claims of ≤ 64 jobs)", unit: "ms", series: [
                    .init(name: "p50", color: "#2ca02c", points: samples.map { ($0.end, $0.claim.percentile(0.5)) }),
                    .init(name: "p99", color: "#d62728", points: samples.map { ($0.end, $0.claim.percentile(0.99)) }),
                ]),
                .init(title: "sluice.jobs size and dead tuples", unit: "MB / thousand tuples", series: [
                    .init(name: "heap MB", color: "#9467bd", points: samples.map { ($0.end, Double($0.snapshot.tableBytes) / 1e6) }),
                    .init(name: "indexes MB", color: "#8c564b", points: samples.map { ($0.end, Double($0.snapshot.indexBytes) / 1e6) }),
                    .init(name: "dead tuples (k)", color: "#7f7f7f", points: samples.map { ($0.end, Double($0.snapshot.deadTuples) / 1000) }),
                ]),
            ])
        do {
            try chart.render().write(toFile: plot, atomically: false, encoding: .utf8)
            print("plot written to \(plot)")
        } catch {
            print("could not write the plot to \(plot): \(error)")
        }
    }

    // MARK: Burst into a quiet queue

    /// Workers start on an empty queue (their plans are made then); then one
    /// `sluice enqueue --file` adds `jobs` jobs (one tenant, normal lane, `delayMs` echo calls).
    /// Reports the time to the first completion and completions per 5 s (and per second in the
    /// first 10 s after the enqueue finished).
    func burst(jobs: Int, processes: Int, concurrency: Int, delayMs: Int, plot: String?, override: String?) async throws {
        let db = try await freshDatabase("burst")
        try await applyOverride(db.postgres, override)
        try await createTenants(db.postgres, count: 1)
        // The JSON Lines file for `sluice enqueue --file`.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-burst-\(UUID().uuidString).jsonl")
        var text = ""
        text.reserveCapacity(jobs * 200)
        for i in 0..<jobs {
            text += #"{"tenant":"tenant-0","lane":"normal","provider":"echo","model":"echo","request":{"messages":[{"role":"user","content":"burst job \#(i)"}]},"metadata":{"echo_delay_ms":\#(delayMs)}}"#
            text += "\n"
        }
        try text.write(to: file, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }

        let workers = try startWorkers(url: db.url, processes: processes, concurrency: concurrency)
        defer { stop(workers) }
        // The workers poll the empty queue (and cache their plans) for a while.
        try await Task.sleep(for: .seconds(5))

        let enqueue = Process()
        enqueue.executableURL = URL(fileURLWithPath: bin + "/sluice")
        enqueue.arguments = ["enqueue", "--file", file.path, "--json", "--log-level", "error"]
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_DATABASE_URL"] = db.url
        enqueue.environment = environment
        enqueue.standardOutput = FileHandle.nullDevice
        let start = clock.now
        try enqueue.run()
        // Completions sampled every 250 ms from the start of the enqueue.
        var points: [(t: Double, done: Int)] = [(0, 0)]
        var enqueueEnd: Double?
        var firstCompletion: Double?
        let deadline = start + .seconds(600)
        while clock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            let done = try await db.postgres.query("SELECT coalesce(sum(requests), 0)::int8 FROM sluice.usage_daily").rows[0].decode(Int.self, at: 0)
            let t = seconds(clock.now - start)
            points.append((t, done))
            if enqueueEnd == nil, !enqueue.isRunning { enqueueEnd = t }
            if firstCompletion == nil, done > 0 { firstCompletion = t }
            if done >= jobs { break }
        }
        enqueue.waitUntilExit()
        let enqueued = enqueueEnd ?? seconds(clock.now - start)
        func done(at t: Double) -> Int { points.last(where: { $0.t <= t })?.done ?? 0 }
        let total = points.last?.done ?? 0
        let elapsed = points.last?.t ?? 1
        print("""

            ### Burst: \(jobs) jobs in one `sluice enqueue --file` into an empty queue, \
            sluice worker --processes \(processes) --concurrency \(concurrency) started 5 s before, echo \(delayMs) ms

            enqueue finished after \(String(format: "%.2f", enqueued)) s; first completion after \
            \(firstCompletion.map { String(format: "%.2f", $0) } ?? "—") s (from the start of the enqueue); \
            \(total) of \(jobs) done after \(String(format: "%.1f", elapsed)) s

            | seconds after the enqueue started | completions/s |
            |---|---:|
            """)
        var t = 0.0
        var perFive: [(Double, Double)] = []
        while t < elapsed {
            let rate = Double(done(at: t + 5) - done(at: t)) / 5
            perFive.append((t + 5, rate))
            print(String(format: "| %.0f–%.0f | %.0f |", t, t + 5, rate))
            t += 5
        }
        // Full throughput: the median per-second rate while 10-90 % of the jobs were done (not
        // the start, not the tail where the queue empties); then the first second after the
        // enqueue finished that reaches 90 % of it.
        var perSecond: [(Double, Double)] = []
        var s = 0.0
        while s + 1 <= elapsed {
            perSecond.append((s + 1, Double(done(at: s + 1) - done(at: s))))
            s += 1
        }
        let body = perSecond.filter {
            Double(done(at: $0.0 - 1)) >= 0.1 * Double(jobs) && Double(done(at: $0.0)) <= 0.9 * Double(jobs)
        }.map(\.1)
        let full = Stats(samples: body).percentile(0.5)
        let reached = perSecond.first(where: { $0.0 > enqueued && $0.1 >= 0.9 * full })?.0
        print(String(format: """

            full rate (median of the 1 s rates while 10-90 %% of the jobs were done): %.0f jobs/s; \
            first 1 s interval at ≥ 90 %% of it ends %@ after the enqueue finished (target: within 2 s)
            """, full, reached.map { String(format: "%.1f s", $0 - enqueued) } ?? "never"))
        guard let plot else { return }
        let chart = SVGPlot(
            title: "Burst: \(jobs) jobs into an empty queue, \(processes) × \(concurrency) slots, echo \(delayMs) ms",
            xLabel: "seconds since the enqueue started (it finished at \(String(format: "%.1f", enqueued)) s)",
            panels: [
                .init(title: "Completions", unit: "jobs/s", series: [
                    .init(name: "per second", color: "#1f77b4", points: perSecond),
                    .init(name: "per 5 s", color: "#ff7f0e", points: perFive),
                ]),
            ])
        do {
            try chart.render().write(toFile: plot, atomically: false, encoding: .utf8)
            print("plot written to \(plot)")
        } catch {
            print("could not write the plot to \(plot): \(error)")
        }
    }
}
