import Foundation
import Sluice
import SluiceJSON
import SluicePostgres
import SluiceSupport

/// One sample of the retention run.
struct RetentionSample {
    var end: Double
    var completionsPerSecond: Double
    var enqueuesPerSecond: Double
    var prunedPerSecond: Double
    var finishedRows: Int
    var oldestFinishedSeconds: Double
    var jobsHeapMB: Double
    var jobsIndexesMB: Double
    var resultsAttemptsMB: Double
    var jobsLive: Int
    var jobsDead: Int
    var resultsDead: Int
    var autovacuums: Int
}

extension Bench {
    /// Retention keeping up: one producer enqueues `rate` jobs/s (`sluice.enqueue_batch`, 128
    /// per call) for `minutes` while `sluice worker` drains them with pruning on
    /// (`--retention`, `--prune-interval`); per sample: completions, deletions by the pruner,
    /// finished rows kept and the age of the oldest, table and index sizes, dead tuples,
    /// autovacuums. Bounded history = the sizes reach a plateau once the retention has passed.
    func retention(minutes: Double, rate: Int, retentionSeconds: Int, pruneIntervalSeconds: Int, processes: Int,
                   concurrency: Int, tenants: Int, sampleSeconds: Int, plot: String?) async throws {
        let db = try await freshDatabase("retention")
        try await createTenants(db.postgres, count: tenants)
        let store = db.client.store
        let workers = try startWorkers(url: db.url, processes: processes, concurrency: concurrency,
                                       extra: ["--retention", "\(retentionSeconds)s", "--prune-interval", "\(pruneIntervalSeconds)s"])
        defer { stop(workers) }
        try await Task.sleep(for: .seconds(2))
        print("retention run: \(rate) jobs/s for \(minutes) min, --retention \(retentionSeconds)s --prune-interval \(pruneIntervalSeconds)s (load \(loadAverage()))")

        let batch = 128
        let payload = specArray(count: batch, tenants: tenants, delayMs: 1)
        let enqueued = Locked(0)
        let postgres = db.postgres
        let clock = clock
        let start = clock.now
        let end = start + .seconds(minutes * 60)
        func read() async throws -> (done: Int, deleted: Int, sample: RetentionSample) {
            let row = try await postgres.query("""
                SELECT (SELECT coalesce(sum(requests), 0) FROM sluice.usage_daily)::int8,
                       s.n_tup_del::int8,
                       ((SELECT count(*) FROM sluice.jobs WHERE state IN ('succeeded', 'cancelled'))
                        + (SELECT count(*) FROM sluice.jobs WHERE state = 'dead'))::int8,
                       coalesce(extract(epoch FROM now() - least(
                           (SELECT min(finished_at) FROM sluice.jobs WHERE state IN ('succeeded', 'cancelled')),
                           (SELECT min(finished_at) FROM sluice.jobs WHERE state = 'dead'))), 0)::float8,
                       pg_table_size('sluice.jobs')::int8, pg_indexes_size('sluice.jobs')::int8,
                       (pg_total_relation_size('sluice.results') + pg_total_relation_size('sluice.attempts'))::int8,
                       s.n_live_tup::int8, s.n_dead_tup::int8,
                       (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'sluice.results'::regclass)::int8,
                       s.autovacuum_count::int8
                  FROM pg_stat_user_tables s WHERE s.relid = 'sluice.jobs'::regclass
                """).rows[0]
            let sample = RetentionSample(
                end: seconds(clock.now - start), completionsPerSecond: 0, enqueuesPerSecond: 0, prunedPerSecond: 0,
                finishedRows: try row.decode(Int.self, at: 2), oldestFinishedSeconds: try row.decode(Double.self, at: 3),
                jobsHeapMB: Double(try row.decode(Int.self, at: 4)) / 1e6, jobsIndexesMB: Double(try row.decode(Int.self, at: 5)) / 1e6,
                resultsAttemptsMB: Double(try row.decode(Int.self, at: 6)) / 1e6, jobsLive: try row.decode(Int.self, at: 7),
                jobsDead: try row.decode(Int.self, at: 8), resultsDead: try row.decode(Int.self, at: 9),
                autovacuums: try row.decode(Int.self, at: 10))
            return (try row.decode(Int.self, at: 0), try row.decode(Int.self, at: 1), sample)
        }
        let samples = try await withThrowingTaskGroup(of: [RetentionSample].self) { group in
            group.addTask {
                // Paced: a batch whenever fewer than rate × elapsed jobs have been enqueued.
                while clock.now < end {
                    let due = Int(Double(rate) * self.seconds(clock.now - start))
                    if enqueued.current + batch > due {
                        try await Task.sleep(for: .milliseconds(5))
                        continue
                    }
                    let n = try await store.enqueueBatchFunction(payload)
                    enqueued.withLock { $0 += n }
                }
                return []
            }
            group.addTask {
                var samples: [RetentionSample] = []
                var last = try await read()
                var lastEnqueued = 0
                var next = start
                print("  t(s)  done/s  enq/s  pruned/s  finished rows  oldest (s)  jobs MB  idx MB  results+attempts MB  jobs dead  results dead  autovac")
                while clock.now < end {
                    next += .seconds(sampleSeconds)
                    try await Task.sleep(until: next, clock: clock)
                    let now = try await read()
                    let total = enqueued.current
                    var sample = now.sample
                    sample.completionsPerSecond = Double(now.done - last.done) / Double(sampleSeconds)
                    sample.enqueuesPerSecond = Double(total - lastEnqueued) / Double(sampleSeconds)
                    sample.prunedPerSecond = Double(now.deleted - last.deleted) / Double(sampleSeconds)
                    print(String(format: "  %4.0f  %6.0f  %5.0f  %8.0f  %13d  %10.0f  %7.1f  %6.1f  %19.1f  %9d  %12d  %d",
                                 sample.end, sample.completionsPerSecond, sample.enqueuesPerSecond, sample.prunedPerSecond,
                                 sample.finishedRows, sample.oldestFinishedSeconds, sample.jobsHeapMB, sample.jobsIndexesMB,
                                 sample.resultsAttemptsMB, sample.jobsDead, sample.resultsDead, sample.autovacuums))
                    samples.append(sample)
                    last = now
                    lastEnqueued = total
                }
                return samples
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        await db.client.shutdown()
        guard !samples.isEmpty else { return }
        print("""

            ### Retention: \(rate) jobs/s enqueued (sluice.enqueue_batch, 128 per call) for \(String(format: "%.0f", minutes * 60)) s, \
            sluice worker --processes \(processes) --concurrency \(concurrency) --retention \(retentionSeconds)s \
            --prune-interval \(pruneIntervalSeconds)s, echo 1 ms, \(tenants) tenants

            | t (s) | completions/s | enqueues/s | pruned/s | finished rows kept | oldest finished (s) | jobs heap (MB) | jobs indexes (MB) | results + attempts (MB) | jobs dead tuples | results dead tuples | autovacuums of jobs (total) |
            |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
            """)
        for s in samples {
            print(String(format: "| %.0f | %.0f | %.0f | %.0f | %d | %.0f | %.1f | %.1f | %.1f | %d | %d | %d |",
                         s.end, s.completionsPerSecond, s.enqueuesPerSecond, s.prunedPerSecond, s.finishedRows,
                         s.oldestFinishedSeconds, s.jobsHeapMB, s.jobsIndexesMB, s.resultsAttemptsMB, s.jobsDead, s.resultsDead,
                         s.autovacuums))
        }
        // Plateau: once two retentions have passed, the total size in the last third of the
        // run against the middle third.
        let total = { (s: RetentionSample) in s.jobsHeapMB + s.jobsIndexesMB + s.resultsAttemptsMB }
        let third = max(1, samples.count / 3)
        let middle = samples.dropFirst(third).prefix(third).map(total)
        let last = samples.suffix(third).map(total)
        let maxFinished = samples.suffix(third).map(\.finishedRows).max() ?? 0
        let maxOldest = samples.suffix(third).map(\.oldestFinishedSeconds).max() ?? 0
        print(String(format: """

            total size (jobs + indexes + results + attempts): max %.1f MB in the middle third, max %.1f MB in the last third \
            (%.0f %%); in the last third at most %d finished rows kept, the oldest %.0f s old (retention %d s + prune interval %d s)
            """, middle.max() ?? .nan, last.max() ?? .nan, 100 * (last.max() ?? 0) / max(middle.max() ?? 1, 1), maxFinished, maxOldest,
                     retentionSeconds, pruneIntervalSeconds))
        guard let plot else { return }
        let chart = SVGPlot(
            title: "Retention: \(rate) jobs/s, --retention \(retentionSeconds)s, --prune-interval \(pruneIntervalSeconds)s",
            xLabel: "seconds since the start (\(sampleSeconds) s samples)",
            panels: [
                .init(title: "Throughput", unit: "jobs/s", series: [
                    .init(name: "completions/s", color: "#1f77b4", points: samples.map { ($0.end, $0.completionsPerSecond) }),
                    .init(name: "pruned/s", color: "#ff7f0e", points: samples.map { ($0.end, $0.prunedPerSecond) }),
                ]),
                .init(title: "Sizes", unit: "MB", series: [
                    .init(name: "jobs heap", color: "#9467bd", points: samples.map { ($0.end, $0.jobsHeapMB) }),
                    .init(name: "jobs indexes", color: "#8c564b", points: samples.map { ($0.end, $0.jobsIndexesMB) }),
                    .init(name: "results + attempts", color: "#2ca02c", points: samples.map { ($0.end, $0.resultsAttemptsMB) }),
                ]),
                .init(title: "Rows", unit: "thousand", series: [
                    .init(name: "finished rows kept (k)", color: "#1f77b4", points: samples.map { ($0.end, Double($0.finishedRows) / 1000) }),
                    .init(name: "jobs dead tuples (k)", color: "#7f7f7f", points: samples.map { ($0.end, Double($0.jobsDead) / 1000) }),
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
