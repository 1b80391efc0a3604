import ArgumentParser
import Foundation
import Logging
import Sluice
import SluiceJSON
import SluicePostgres

/// `sluice-bench queue`: the job store and worker benchmarks of the job-store and worker
/// issues, end to end through the real `sluice worker` processes and the echo provider.
struct QueueBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "Enqueue, claim/complete and end-to-end queue benchmarks.")

    @Option(help: "Jobs for the bulk and end-to-end runs.") var jobs: Int = 100_000
    @Option(help: "Comma-separated worker process counts for the end-to-end run.") var processes: String = "1,2,4"
    @Option(help: "Comma-separated slots per worker process for the end-to-end run.") var concurrency: String = "512,1024"
    @Option(help: "Seconds of steady load for the latency runs.") var seconds: Int = 10
    @Option(help: "Only these sections (enqueue,bulk,wait,tenants,e2e,latency,fairness,fairness-cpu,weights,interactive,bare,store; sustained, burst, history, retention and running run only when named).") var only: String?
    @Option(help: "Runs of each fairness section (and of its idle reference).") var fairnessRuns: Int = 5
    @Option(help: "Extra `sluice worker` options for every worker these sections start, space-separated (A/B runs of one build, e.g. '--scheduling-lag-target-ms 0').") var workerArgs: String = ""
    @Option(help: "Minutes of the sustained-load run (10 for the record, 2 in quick runs).") var minutes: Double = 10
    @Option(help: "Sustained run: queue depth the producers hold.") var depth: Int = 1000
    @Option(help: "Sustained run: jobs per sluice.enqueue_batch call.") var batch: Int = 128
    @Option(help: "Sustained run: producer connections.") var producers: Int = 2
    @Option(help: "Sustained and burst runs: worker processes.") var workerProcesses: Int = 2
    @Option(help: "Sustained run: slots per worker process.") var sustainedConcurrency: Int = 256
    @Option(help: "Sustained run: echo call duration in milliseconds.") var sustainedDelayMs: Int = 1
    @Option(help: "Sustained run: tenants the jobs are spread over.") var tenants: Int = 10
    @Option(help: "Sustained run: seconds per sample.") var sampleSeconds: Int = 10
    @Option(help: "Burst run: jobs in the one enqueue.") var burstJobs: Int = 150_000
    @Option(help: "Burst run: slots per worker process.") var burstConcurrency: Int = 256
    @Option(help: "Burst run: echo call duration in milliseconds.") var burstDelayMs: Int = 50
    @Option(help: "Where the sustained and burst runs write their SVG plots (none: no plots).") var plotDirectory: String = "docs/bench"
    @Option(help: "SQL file applied after migrating each e2e/sustained/burst/history/running database (older function definitions, for before/after runs on one build).") var afterMigrateSQL: String?
    @Option(help: "Suffix of the plot file names (e.g. -before).") var plotSuffix: String = ""
    @Option(help: "History run: finished jobs of the large history (10,000,000 for the record; 1,000,000 in quick runs).") var historyJobs: Int = 10_000_000
    @Option(help: "History run: finished jobs of the small history it is compared with.") var historySmall: Int = 10_000
    @Option(help: "History run: queued jobs beside either history.") var historyQueued: Int = 1_000_000
    @Option(help: "History run: claims timed (each up to 64 jobs, finished at once).") var historyClaims: Int = 300
    @Option(help: "History run: seconds of back-to-back enqueue_batch calls.") var historyEnqueueSeconds: Int = 10
    @Option(help: "History run: calls per jobs-list variant.") var historyLists: Int = 50
    @Flag(help: "History run: print EXPLAIN (ANALYZE, BUFFERS) of the listing and pruning statements.") var historyExplain = false
    @Option(help: "Running run: comma-separated counts of the tenant's running jobs.") var runningCounts: String = "0,1000,8000,30000"
    @Option(help: "Running run: claims timed per count.") var runningClaims: Int = 50
    @Option(help: "Retention run: jobs per second the producer enqueues.") var retentionRate: Int = 2000
    @Option(help: "Retention run: the workers' --retention in seconds.") var retentionSeconds: Int = 60
    @Option(help: "Retention run: the workers' --prune-interval in seconds.") var pruneIntervalSeconds: Int = 10

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        guard let base = ProcessInfo.processInfo.environment["SLUICE_BENCH_DATABASE_URL"],
              let bin = ProcessInfo.processInfo.environment["SLUICE_BIN_DIR"] else {
            throw ValidationError("run through scripts/bench queue")
        }
        let sections = Set((only ?? "enqueue,bulk,wait,tenants,e2e,latency,fairness,fairness-cpu,weights,interactive,bare,store").split(separator: ",").map(String.init))
        var bench = Bench(base: base, bin: bin, logger: logger)
        bench.workerArgs = workerArgs.split(separator: " ").map(String.init)
        if sections.contains("enqueue") { try await bench.singleEnqueue() }
        if sections.contains("bulk") { try await bench.bulk(jobs: jobs) }
        if sections.contains("wait") { try await bench.waitLatency() }
        if sections.contains("tenants") { try await bench.manyTenants() }
        if sections.contains("e2e") {
            for slots in concurrency.split(separator: ",").compactMap({ Int($0) }) {
                for count in processes.split(separator: ",").compactMap({ Int($0) }) {
                    try await bench.endToEnd(jobs: jobs, processes: count, concurrency: slots, override: afterMigrateSQL)
                }
            }
        }
        if sections.contains("latency") { _ = try await bench.pickupLatency(seconds: seconds) }
        // The quiet tenant's pickup, idle (the reference), then with slots saturated (the noisy
        // tenant's 1 s calls hold every slot; the regime of LLM calls), then with the CPUs
        // saturated (50 ms calls: more work than the 2 cores can claim and record). Each run in a
        // fresh database; every run is printed.
        if sections.contains("fairness") || sections.contains("fairness-cpu") {
            let idle = try await bench.quietIdle(runs: fairnessRuns, seconds: seconds)
            if sections.contains("fairness") { try await bench.fairness(runs: fairnessRuns, seconds: seconds, noisyDelayMs: 1000, idle: idle) }
            if sections.contains("fairness-cpu") { try await bench.fairness(runs: fairnessRuns, seconds: seconds, noisyDelayMs: 50, idle: idle) }
        }
        if sections.contains("weights") { try await bench.weightedShares(seconds: seconds) }
        if sections.contains("interactive") { try await bench.interactive(seconds: seconds) }
        if sections.contains("bare") { try await bench.bareSQL(jobs: jobs) }
        if sections.contains("store") { try await bench.storeLimit(jobs: jobs) }
        let plotPath = { (name: String) -> String? in
            plotDirectory.isEmpty || plotDirectory == "none" ? nil : "\(plotDirectory)/\(name)\(plotSuffix).svg"
        }
        if sections.contains("burst") {
            try await bench.burst(jobs: burstJobs, processes: workerProcesses, concurrency: burstConcurrency, delayMs: burstDelayMs,
                                  plot: plotPath("burst"), override: afterMigrateSQL)
        }
        if sections.contains("history") {
            try await bench.history(small: historySmall, large: historyJobs, queued: historyQueued, tenants: tenants,
                                    claims: historyClaims, enqueueSeconds: historyEnqueueSeconds, lists: historyLists,
                                    explain: historyExplain, override: afterMigrateSQL)
        }
        if sections.contains("running") {
            try await bench.runningClaims(counts: runningCounts.split(separator: ",").compactMap { Int($0) }, claims: runningClaims,
                                          override: afterMigrateSQL)
        }
        if sections.contains("retention") {
            try await bench.retention(minutes: minutes, rate: retentionRate, retentionSeconds: retentionSeconds,
                                      pruneIntervalSeconds: pruneIntervalSeconds, processes: workerProcesses,
                                      concurrency: sustainedConcurrency, tenants: tenants, sampleSeconds: sampleSeconds,
                                      plot: plotPath("retention"))
        }
        if sections.contains("sustained") {
            try await bench.sustained(minutes: minutes, processes: workerProcesses, concurrency: sustainedConcurrency, depth: depth,
                                      batch: batch, producers: producers, delayMs: sustainedDelayMs, tenants: tenants,
                                      sampleSeconds: sampleSeconds, plot: plotPath("sustained"), override: afterMigrateSQL)
        }
    }
}

struct Stats: CustomStringConvertible {
    var samples: [Double]
    func percentile(_ p: Double) -> Double {
        guard !samples.isEmpty else { return .nan }
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }
    var description: String {
        String(format: "n=%d p50=%.2f ms p99=%.2f ms max=%.2f ms", samples.count, percentile(0.5), percentile(0.99), samples.max() ?? .nan)
    }
}

/// A time-ordered UUID (version 7 layout): the same shape of key the enqueue path writes.
func uuidV7() -> String {
    let millis = UInt64(Date().timeIntervalSince1970 * 1000)
    var bytes = [UInt8](repeating: 0, count: 16)
    for k in 0..<6 { bytes[k] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - k))) }
    var random = SystemRandomNumberGenerator()
    for k in 6..<16 { bytes[k] = UInt8.random(in: 0...255, using: &random) }
    bytes[6] = 0x70 | (bytes[6] & 0x0f)
    bytes[8] = 0x80 | (bytes[8] & 0x3f)
    let hex = bytes.map { String(format: "%02x", $0) }.joined()
    let h = Array(hex)
    return String(h[0..<8]) + "-" + String(h[8..<12]) + "-" + String(h[12..<16]) + "-" + String(h[16..<20]) + "-" + String(h[20..<32])
}

struct Bench {
    let base: String
    let bin: String
    let logger: Logger
    let clock = ContinuousClock()
    /// Added to every `sluice worker` command line (`--worker-args`).
    var workerArgs: [String] = []

    /// Enqueues `jobs` echo jobs over 10 tenants, 10,000 per call: the pre-filled queue of the
    /// end-to-end, bare-SQL and SQL API sections.
    func prefill(_ client: SluiceClient, jobs: Int) async throws {
        for offset in stride(from: 0, to: jobs, by: 10_000) {
            _ = try await client.enqueue(batch: (offset..<min(offset + 10_000, jobs)).map { spec("tenant-\($0 % 10)", $0) })
        }
    }

    func freshDatabase(_ label: String) async throws -> (url: String, postgres: PostgresClient, client: SluiceClient) {
        let name = "bench_\(label)_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = PostgresClient(configuration: try PostgresConfiguration(url: base), pool: .init(maxConnections: 1), logger: logger)
        // Earlier sections' databases go first: autovacuum working through their dead rows
        // would otherwise share the two cores with this section.
        let old = try await admin.query("SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'")
        for row in old.rows {
            _ = try await admin.query("DROP DATABASE \(unescaped: try row.decode(String.self, at: 0)) WITH (FORCE)")
        }
        _ = try await admin.query("CREATE DATABASE \(unescaped: name)")
        await admin.shutdown()
        var components = URLComponents(string: base)!
        components.path = "/" + name
        let url = components.string!
        let postgres = PostgresClient(configuration: try PostgresConfiguration(url: url), pool: .init(maxConnections: 20), logger: logger)
        try await SluiceSchema.migrate(postgres, logger: logger)
        // The benchmarks enqueue for tenants they never create (auto_create_tenants is off by default since 0005).
        _ = try await postgres.query("UPDATE sluice.settings SET auto_create_tenants = true")
        return (url, postgres, SluiceClient(postgres: postgres, logger: logger))
    }

    func spec(_ tenant: String, _ i: Int, lane: Lane = .normal) -> JobSpec {
        JobSpec(tenant: tenant, lane: lane, provider: "echo", model: "echo",
                request: JSONDocument(#"{"messages":[{"role":"user","content":"benchmark job \#(i) with a realistic short prompt"}]}"#))
    }

    func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    // MARK: Enqueue

    func singleEnqueue() async throws {
        let db = try await freshDatabase("enqueue")
        for callers in [1, 16] {
            let perCaller = callers == 1 ? 3000 : 1000
            let start = clock.now
            let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
                for c in 0..<callers {
                    group.addTask {
                        var samples: [Double] = []
                        for i in 0..<perCaller {
                            let t0 = clock.now
                            _ = try await db.client.enqueue(spec("tenant-\(c % 4)", i))
                            samples.append(seconds(clock.now - t0) * 1000)
                        }
                        return samples
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let elapsed = seconds(clock.now - start)
            print(String(format: "enqueue single, %2d callers: %7.0f jobs/s  latency %@", callers, Double(latencies.count) / elapsed,
                         Stats(samples: latencies).description))
        }
        await db.client.shutdown()
    }

    func bulk(jobs: Int) async throws {
        let db = try await freshDatabase("bulk")
        let batch = 10_000
        var start = clock.now
        for offset in stride(from: 0, to: jobs, by: batch) {
            _ = try await db.client.enqueue(batch: (offset..<min(offset + batch, jobs)).map { spec("tenant-\($0 % 10)", $0, lane: .batch) })
        }
        let library = Double(jobs) / seconds(clock.now - start)
        print(String(format: "enqueue bulk (SluiceClient.enqueue(batch:), 10k per call): %8.0f jobs/s", library))

        // Concurrent callers (several loaders, or one loader with several connections, as
        // `sluice enqueue --file --parallel N` does): each batch is still its own all-or-nothing
        // transaction.
        let client = db.client
        var library2 = 0.0
        for callers in [2, 4] {
            start = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<callers {
                    group.addTask {
                        for offset in stride(from: caller * batch, to: jobs, by: callers * batch) {
                            _ = try await client.enqueue(batch: (offset..<min(offset + batch, jobs)).map {
                                spec("c\(callers)-\($0 % 10)", $0, lane: .batch)
                            })
                        }
                    }
                }
                try await group.waitForAll()
            }
            let rate = Double(jobs) / seconds(clock.now - start)
            if callers == 2 { library2 = rate }
            print(String(format: "enqueue bulk, %d concurrent callers of enqueue(batch:), 10k per call: %8.0f jobs/s", callers, rate))
        }

        // The same specs through the SQL function, as a service in another language would call it.
        var payloads: [PostgresJSON] = []
        for offset in stride(from: 0, to: jobs, by: batch) {
            var writer = JSONWriter(capacity: batch * 200)
            writer.beginArray()
            for i in offset..<min(offset + batch, jobs) {
                writer.raw(Array(#"{"tenant":"sql-\#(i % 10)","lane":"batch","provider":"echo","model":"echo","request":{"messages":[{"role":"user","content":"benchmark job \#(i) with a realistic short prompt"}]}}"#.utf8))
            }
            writer.endArray()
            payloads.append(PostgresJSON(bytes: writer.bytes))
        }
        start = clock.now
        for payload in payloads {
            _ = try await db.client.store.enqueueBatchFunction(payload)
        }
        let sql = Double(jobs) / seconds(clock.now - start)
        print(String(format: "enqueue bulk (SELECT sluice.enqueue_batch($1), 10k per call): %8.0f jobs/s", sql))
        let store = db.client.store
        let all = payloads
        start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<2 {
                group.addTask {
                    for payload in stride(from: caller, to: all.count, by: 2).map({ all[$0] }) {
                        _ = try await store.enqueueBatchFunction(payload)
                    }
                }
            }
            try await group.waitForAll()
        }
        let sql2 = Double(jobs) / seconds(clock.now - start)
        print(String(format: "enqueue bulk, 2 concurrent callers of sluice.enqueue_batch, 10k per call: %8.0f jobs/s", sql2))

        // The physical limit: COPY of the same rows into a table like sluice.jobs (same columns
        // and defaults) without indexes, constraints or triggers: the issue's "equivalent table".
        // Also into a narrow 8-column table (the figure earlier runs reported).
        _ = try await db.postgres.query("CREATE TABLE bare (LIKE sluice.jobs INCLUDING DEFAULTS)")
        _ = try await db.postgres.query("""
            CREATE TABLE narrow (id uuid, tenant text, lane text, provider text, model text, request jsonb,
                                 run_at timestamptz, created_at timestamptz)
            """)
        func copyPayload(_ line: (Int) -> String) -> [[UInt8]] {
            var chunks: [[UInt8]] = []
            var chunk: [UInt8] = []
            for i in 0..<jobs {
                chunk.append(contentsOf: line(i).utf8)
                if chunk.count > 256 * 1024 { chunks.append(chunk); chunk = [] }
            }
            if !chunk.isEmpty { chunks.append(chunk) }
            return chunks
        }
        let request = { (i: Int) in #"{"messages":[{"role":"user","content":"benchmark job \#(i) with a realistic short prompt"}]}"# }
        let now = "2026-11-23 12:00:00+00"
        var bareRates: [Double] = []
        for (table, columns, payload) in [
            ("bare", "(id, tenant, lane, provider, model, request)",
             copyPayload { "\(uuidV7())\tbare-\($0 % 10)\tbatch\techo\techo\t\(request($0))\n" }),
            ("narrow", "", copyPayload { "\(UUID().uuidString)\tbare-\($0 % 10)\tbatch\techo\techo\t\(request($0))\t\(now)\t\(now)\n" }),
        ] {
            start = clock.now
            let copied = try await db.postgres.withConnection { conn in
                try await conn.copyFrom("COPY \(table) \(columns) FROM STDIN", chunks: payload)
            }
            bareRates.append(Double(copied) / seconds(clock.now - start))
        }
        let bare = bareRates[0]
        print(String(format: "bare COPY into an unindexed copy of sluice.jobs (physical limit): %8.0f rows/s", bare))
        print(String(format: "bare COPY into an unindexed 8-column table:                      %8.0f rows/s", bareRates[1]))

        // The jobs table's own limit: the same rows COPYed straight into sluice.jobs (its
        // indexes and queue-depth trigger, no validation, no admission), 10k rows per COPY.
        var direct: [[UInt8]] = []
        var block: [UInt8] = []
        for i in 0..<jobs {
            let line = "\(uuidV7())\tdirect-\(i % 10)\tbatch\techo\techo\t{\"messages\":[{\"role\":\"user\",\"content\":\"benchmark job \(i) with a realistic short prompt\"}]}\n"
            block.append(contentsOf: line.utf8)
            if (i + 1) % 10_000 == 0 { direct.append(block); block = [] }
        }
        if !block.isEmpty { direct.append(block) }
        _ = try await db.postgres.query("INSERT INTO sluice.tenants (id) SELECT 'direct-' || i FROM generate_series(0, 9) i")
        start = clock.now
        for chunk in direct {
            _ = try await db.postgres.withConnection { conn in
                try await conn.copyFrom("COPY sluice.jobs (id, tenant, lane, provider, model, request) FROM STDIN", chunks: [chunk])
            }
        }
        let table = Double(jobs) / seconds(clock.now - start)
        print(String(format: "COPY straight into sluice.jobs (indexes + trigger, no validation): %8.0f rows/s", table))
        print(String(format: "library bulk = %.0f %% of bare COPY (%.0f %% of the jobs-table COPY); SQL bulk = %.0f %% (%.0f %%)",
                     100 * library / bare, 100 * library / table, 100 * sql / bare, 100 * sql / table))
        print(String(format: "with 2 callers: library %.0f %% of bare COPY (%.0f %% of the jobs-table COPY); SQL %.0f %% (%.0f %%)",
                     100 * library2 / bare, 100 * library2 / table, 100 * sql2 / bare, 100 * sql2 / table))
        await db.client.shutdown()
    }

    // MARK: Wait

    /// How soon `SluiceClient.wait` returns once another connection has written the job's
    /// terminal state: the job is claimed and finished with plain SQL on a second connection
    /// while the client waits (LISTEN/NOTIFY, no polling). Measured from the return of the
    /// committing statement to the return of `wait`, 300 times, one job at a time.
    func waitLatency() async throws {
        let db = try await freshDatabase("wait")
        let client = db.client
        var samples: [Double] = []
        for i in 0..<300 {
            let id = try await client.enqueue(spec("waiter", i)).id
            _ = try await client.store.claim(.init(
                worker: "bench", limit: 1, lanes: Lane.allCases, tenants: nil, lease: .seconds(30),
                starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
            let waiter = Task { () -> ContinuousClock.Instant in
                _ = try await client.wait(for: id, timeout: .seconds(10))
                return clock.now
            }
            try await Task.sleep(for: .milliseconds(5))   // the waiter is listening
            var outcome = AttemptOutcome(jobID: id, attempt: 1, kind: .succeeded, startedAt: Date(), duration: .milliseconds(1))
            outcome.usage = Usage(inputTokens: 1, outputTokens: 1)
            outcome.result = ProviderResult(
                text: "ok", finishReason: "stop", rawResponse: [], usage: Usage(inputTokens: 1, outputTokens: 1),
                costUSD: nil, model: "echo", provider: "echo", latency: .milliseconds(1), timeToFirstToken: nil)
            _ = try await client.store.finishAttempts(worker: "bench", outcomes: [outcome])
            let committed = clock.now
            let woke = try await waiter.value
            samples.append(max(0, seconds(woke - committed) * 1000))
        }
        print("wait: returns after another connection's terminal write: \(Stats(samples: samples))")
        await client.shutdown()
    }

    // MARK: Many tenants

    /// Claim statements (100 jobs each, as the worker calls them) with 1, 100 and 10,000
    /// tenants holding queued jobs (50k jobs in all). Claimed jobs are marked finished between
    /// claims (not timed), as workers finish them, so the running set stays at one claim's worth.
    func manyTenants() async throws {
        var medians: [Int: Double] = [:]
        for tenants in [1, 100, 10_000] {
            let db = try await freshDatabase("tenants\(tenants)")
            for offset in stride(from: 0, to: 50_000, by: 10_000) {
                _ = try await db.client.enqueue(batch: (offset..<offset + 10_000).map { spec("t-\($0 % tenants)", $0) })
            }
            _ = try await db.postgres.query("UPDATE sluice.tenants SET max_concurrency = 100000")
            _ = try await db.postgres.query("VACUUM ANALYZE sluice.jobs")
            var samples: [Double] = []
            for _ in 0..<60 {
                let start = clock.now
                let jobs = try await db.client.store.claim(.init(
                    worker: "bench", limit: 100, lanes: Lane.allCases, tenants: nil, lease: .seconds(30),
                    starvationAfter: .seconds(10), reserved: 5, tenantWindow: 256))
                samples.append(seconds(clock.now - start) * 1000)
                _ = try await db.postgres.query(
                    "UPDATE sluice.jobs SET state = 'succeeded', finished_at = now(), lease_owner = NULL WHERE id = ANY($1)",
                    [jobs.map(\.id)])
            }
            let stats = Stats(samples: Array(samples.dropFirst(10)))
            medians[tenants] = stats.percentile(0.5)
            print("claim of 100 jobs, \(tenants) tenant(s) with queued jobs (50k jobs), 50 claims after 10 warm-up: \(stats)")
            await db.client.shutdown()
        }
        if let one = medians[1], let many = medians[10_000], let hundred = medians[100] {
            print(String(format: "claim p50 with 100 / 10,000 tenants vs 1 tenant: %.2fx / %.2fx", hundred / one, many / one))
        }
    }

    // MARK: End to end

    func startWorkers(url: String, processes: Int, concurrency: Int = 512, extra: [String] = []) throws -> Process {
        let process = Process()
        let command = ["worker", "--processes", "\(processes)", "--concurrency", "\(concurrency)", "--log-level", "error"] + extra
            + workerArgs
        // Through `setpriv --pdeathsig TERM` (util-linux) where there is one: the workers get
        // SIGTERM when this process dies, so a benchmark that fails or is killed mid-section
        // leaves no `sluice worker` running (they outlived a failed run by hours before).
        let setpriv = "/usr/bin/setpriv"
        if FileManager.default.isExecutableFile(atPath: setpriv) {
            process.executableURL = URL(fileURLWithPath: setpriv)
            process.arguments = ["--pdeathsig", "TERM", "--", bin + "/sluice"] + command
        } else {
            process.executableURL = URL(fileURLWithPath: bin + "/sluice")
            process.arguments = command
        }
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_DATABASE_URL"] = url
        process.environment = environment
        try process.run()
        return process
    }

    func stop(_ process: Process) {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    func count(_ postgres: PostgresClient, _ sql: String) async throws -> Int {
        try await postgres.query(PostgresQuery(unsafeSQL: sql)).rows[0].decode(Int.self, at: 0)
    }

    func endToEnd(jobs: Int, processes: Int, concurrency: Int, override: String? = nil) async throws {
        let db = try await freshDatabase("e2e\(processes)")
        try await applyOverride(db.postgres, override)
        try await prefill(db.client, jobs: jobs)
        _ = try await db.postgres.query("UPDATE sluice.tenants SET max_concurrency = 10000")
        // Start from a settled table (as a long-lived queue is): no autovacuum of the fresh
        // backlog racing the workers for the two cores.
        _ = try await db.postgres.query("VACUUM ANALYZE sluice.jobs")
        let workers = try startWorkers(url: db.url, processes: processes, concurrency: concurrency)
        // Time from the first job starting to the last one finishing (server clock). The poll
        // stops at the first unfinished row (a count of them cost ~50 ms of the shared CPU).
        while try await db.postgres.query("SELECT EXISTS (SELECT 1 FROM sluice.jobs WHERE state IN ('queued','running'))")
                .rows[0].decode(Bool.self, at: 0) {
            try await Task.sleep(for: .milliseconds(500))
        }
        stop(workers)
        let span = try await db.postgres.query(
            "SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8, count(*) FILTER (WHERE state = 'succeeded') FROM sluice.jobs")
        let elapsed = try span.rows[0].decode(Double.self, at: 0)
        let succeeded = try span.rows[0].decode(Int.self, at: 1)
        print(String(format: "end to end, echo 0 ms, %d process(es) x %d slots: %d jobs in %.2f s = %7.0f jobs/s",
                     processes, concurrency, succeeded, elapsed, Double(succeeded) / elapsed))
        await db.client.shutdown()
    }

    /// Enqueues one job per tick for the tenant at `rate` per second; returns pickup latencies
    /// (started_at − created_at, both server clock) of those jobs.
    /// With `breakdown`, also prints where the time went, per job, on the shared wall clock
    /// (client and server are on one host): the enqueue call until it returned (commit and the
    /// NOTIFY call included) and from then until the claim's start.
    func steady(_ db: (url: String, postgres: PostgresClient, client: SluiceClient), tenant: String, lane: Lane,
                rate: Int, seconds: Int, breakdown: String? = nil) async throws -> Stats {
        var ids: [UUID] = []
        var returned: [UUID: Double] = [:]
        var notifyCall: [Double] = []
        let interval = Duration.milliseconds(1000 / rate)
        var next = clock.now
        for i in 0..<(rate * seconds) {
            let id: UUID
            if breakdown == nil {
                id = try await db.client.enqueue(spec(tenant, i, lane: lane)).id
                returned[id] = Date().timeIntervalSince1970
            } else {
                // What SluiceClient.enqueue does for one caller, in its two steps, timed apart:
                // the enqueue transaction (returns once committed), then the NOTIFY call.
                let json = #"[{"tenant":"\#(tenant)","lane":"\#(lane.rawValue)","provider":"echo","model":"echo","request":{"messages":[{"role":"user","content":"benchmark job \#(i) with a realistic short prompt"}]}}]"#
                let store = db.client.store
                id = try await store.postgres.withConnection { connection in
                    try await JobStore.enqueue(specs: PostgresJSON(bytes: Array(json.utf8)), count: 1, notify: false, on: connection)
                }[0].id
                let committed = Date().timeIntervalSince1970
                returned[id] = committed
                try await store.notifyLanes([lane.rawValue])
                notifyCall.append((Date().timeIntervalSince1970 - committed) * 1000)
            }
            ids.append(id)
            next += interval
            try await Task.sleep(until: next, clock: clock)
        }
        while try await db.postgres.query("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND started_at IS NULL", [ids])
                .rows[0].decode(Int.self, at: 0) > 0 {
            try await Task.sleep(for: .milliseconds(100))
        }
        let rows = try await db.postgres.query(
            """
            SELECT id, extract(epoch FROM started_at - created_at)::float8 * 1000,
                   extract(epoch FROM created_at)::float8, extract(epoch FROM started_at)::float8
              FROM sluice.jobs WHERE id = ANY($1)
            """, [ids])
        var total: [Double] = [], enqueueCall: [Double] = [], afterReturn: [Double] = []
        for row in rows.rows {
            let id = try row.decode(UUID.self, at: 0)
            total.append(try row.decode(Double.self, at: 1))
            let created = try row.decode(Double.self, at: 2), started = try row.decode(Double.self, at: 3)
            if let back = returned[id] {
                enqueueCall.append((back - created) * 1000)
                afterReturn.append((started - back) * 1000)
            }
        }
        if let breakdown {
            // When the call really began: the attempt's start, taken by the worker (same host,
            // same clock) when the provider call starts — after the claim statement returned
            // and the job's task ran. jobs.started_at is the claim transaction's start, before
            // any wait for the claim lock and the claim itself.
            var callStart: [Double] = [], committedToCall: [Double] = []
            for _ in 0..<100 {
                let attempts = try await db.postgres.query("""
                    SELECT j.id, extract(epoch FROM a.started_at - j.created_at)::float8 * 1000, extract(epoch FROM a.started_at)::float8
                      FROM sluice.jobs j JOIN sluice.attempts a ON a.job_id = j.id AND a.attempt = j.attempt
                     WHERE j.id = ANY($1)
                    """, [ids])
                callStart = try attempts.rows.map { try $0.decode(Double.self, at: 1) }
                committedToCall = try attempts.rows.compactMap { row in
                    try returned[row.decode(UUID.self, at: 0)].map { (try row.decode(Double.self, at: 2) - $0) * 1000 }
                }
                if callStart.count >= ids.count { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            // The jobs of the worst 1 % by pickup: how much of it was the enqueue call.
            let worst = zip(total, zip(enqueueCall, afterReturn)).sorted { $0.0 > $1.0 }.prefix(max(1, total.count / 100))
            print("  \(breakdown): CALL START (attempt started_at - created_at) \(Stats(samples: callStart)); "
                  + "enqueue transaction (created_at -> committed) \(Stats(samples: enqueueCall)); "
                  + "NOTIFY call \(Stats(samples: notifyCall)); "
                  + "COMMITTED -> CALL START \(Stats(samples: committedToCall)); "
                  + "committed -> claim start \(Stats(samples: afterReturn)); worst 1 % by claim start: "
                  + worst.map { String(format: "%.1f = %.1f + %.1f", $0.0, $0.1.0, $0.1.1) }.joined(separator: ", "))
        }
        return Stats(samples: total)
    }

    func pickupLatency(seconds: Int) async throws -> Stats {
        let db = try await freshDatabase("latency")
        let workers = try startWorkers(url: db.url, processes: 2)
        try await Task.sleep(for: .seconds(2))
        let stats = try await steady(db, tenant: "steady", lane: .normal, rate: 200, seconds: seconds)
        stop(workers)
        print("pickup latency (enqueue -> start), 200 jobs/s steady, idle queue, 2 processes: \(stats)")
        await db.client.shutdown()
        return stats
    }

    func backlog(_ db: (url: String, postgres: PostgresClient, client: SluiceClient), tenant: String, lane: Lane, jobs: Int, delayMs: Int) async throws {
        for offset in stride(from: 0, to: jobs, by: 10_000) {
            _ = try await db.client.enqueue(batch: (offset..<min(offset + 10_000, jobs)).map { i in
                var s = spec(tenant, i, lane: lane)
                s.metadata = JSONDocument(#"{"echo_delay_ms":\#(delayMs)}"#)
                return s
            })
        }
    }

    /// The quiet tenant alone (20 jobs/s on an idle queue, 2 worker processes): the reference
    /// for the fairness runs. Returns the median of the runs' p99.
    func quietIdle(runs: Int, seconds: Int) async throws -> Double {
        var p99s: [Double] = []
        for run in 1...runs {
            let db = try await freshDatabase("quietidle")
            _ = try await db.client.enqueue(spec("quiet", 0))   // (creates the tenant)
            let workers = try startWorkers(url: db.url, processes: 2)
            try await Task.sleep(for: .seconds(2))
            let stats = try await steady(db, tenant: "quiet", lane: .normal, rate: 20, seconds: seconds, breakdown: "idle run \(run)")
            stop(workers)
            print("fairness reference, run \(run)/\(runs): quiet tenant at 20 jobs/s, idle queue, 2 processes: \(stats)")
            p99s.append(stats.percentile(0.99))
            await db.client.shutdown()
        }
        let median = Stats(samples: p99s).percentile(0.5)
        print(String(format: "fairness reference: quiet tenant's idle p99 over %d runs: %@ ms; median %.2f ms",
                     runs, p99s.map { String(format: "%.2f", $0) }.joined(separator: ", "), median))
        return median
    }

    /// The quiet tenant (20 jobs/s) beside a 100k backlog of another tenant's calls of
    /// `noisyDelayMs`, `runs` times, each run in a fresh database; each run's p99 against the
    /// idle reference's median p99.
    func fairness(runs: Int, seconds: Int, noisyDelayMs: Int, idle: Double) async throws {
        var ratios: [Double] = []
        for run in 1...runs {
            let db = try await freshDatabase("fair\(noisyDelayMs)")
            try await backlog(db, tenant: "noisy", lane: .normal, jobs: 100_000, delayMs: noisyDelayMs)
            _ = try await db.client.enqueue(spec("quiet", 0))
            _ = try await db.postgres.query("UPDATE sluice.tenants SET max_concurrency = 10000")
            _ = try await db.postgres.query("VACUUM ANALYZE sluice.jobs")
            let workers = try startWorkers(url: db.url, processes: 2)
            try await Task.sleep(for: .seconds(2))
            let busy = try await count(db.postgres, "SELECT count(*) FROM sluice.jobs WHERE tenant = 'noisy' AND state = 'running'")
            let stats = try await steady(db, tenant: "quiet", lane: .normal, rate: 20, seconds: seconds,
                                         breakdown: "\(noisyDelayMs) ms run \(run)")
            let left = try await count(db.postgres, "SELECT count(*) FROM sluice.jobs WHERE tenant = 'noisy' AND state = 'queued'")
            stop(workers)
            let ratio = stats.percentile(0.99) / idle
            ratios.append(ratio)
            print("fairness, run \(run)/\(runs): quiet tenant at 20 jobs/s beside a 100k noisy backlog of \(noisyDelayMs) ms calls "
                  + "(\(busy) noisy jobs running at the start, \(left) still queued at the end): \(stats)"
                  + String(format: "  (p99 %.1fx the idle p99)", ratio))
            await db.client.shutdown()
        }
        print(String(format: "fairness, %d ms calls: p99 / idle p99 over %d runs: %@; every run within 2x: %@", noisyDelayMs, runs,
                     ratios.map { String(format: "%.1fx", $0) }.joined(separator: ", "), ratios.allSatisfy { $0 <= 2 } ? "yes" : "no"))
    }

    /// Ten tenants with deep backlogs at weights 1…10 drained by 2 worker processes: each
    /// tenant's share of the starts in a window of `seconds` against its weight's share.
    func weightedShares(seconds: Int) async throws {
        let db = try await freshDatabase("weights")
        let perTenant = 20_000
        for w in 1...10 {
            try await backlog(db, tenant: "w\(w)", lane: .normal, jobs: perTenant, delayMs: 20)
            _ = try await db.postgres.query("UPDATE sluice.tenants SET weight = \(Double(w)), max_concurrency = 100000 WHERE id = \("w\(w)")")
        }
        _ = try await db.postgres.query("VACUUM ANALYZE sluice.jobs")
        let workers = try startWorkers(url: db.url, processes: 2)
        // The window opens once the workers are at full speed, and closes before any tenant runs dry.
        try await Task.sleep(for: .seconds(3))
        let opened = try await db.postgres.query("SELECT now()").rows[0].decode(Date.self, at: 0)
        try await Task.sleep(for: .seconds(seconds))
        let closed = try await db.postgres.query("SELECT now()").rows[0].decode(Date.self, at: 0)
        stop(workers)
        let rows = try await db.postgres.query("""
            SELECT tenant, count(*) FILTER (WHERE started_at >= $1 AND started_at < $2)::int,
                   count(*) FILTER (WHERE state = 'queued')::int
              FROM sluice.jobs GROUP BY tenant ORDER BY tenant
            """, [opened, closed]).rows
        var started: [Int: Int] = [:]
        var left: [Int: Int] = [:]
        for row in rows {
            let w = Int(try row.decode(String.self, at: 0).dropFirst())!
            started[w] = try row.decode(Int.self, at: 1)
            left[w] = try row.decode(Int.self, at: 2)
        }
        let total = started.values.reduce(0, +)
        var worst = 0.0
        var parts: [String] = []
        for w in 1...10 {
            let share = Double(started[w] ?? 0) / Double(max(total, 1))
            let expected = Double(w) / 55
            let deviation = share / expected - 1
            worst = max(worst, abs(deviation))
            parts.append(String(format: "w%d %.2f%% (expected %.2f%%, %+.1f%%, %d left)", w, share * 100, expected * 100, deviation * 100, left[w] ?? 0))
        }
        print("weighted shares: 10 backlogged tenants at weights 1..10, 20 ms calls, 2 processes x 512 slots, \(total) starts in \(seconds) s: "
              + parts.joined(separator: "; ") + String(format: "; worst deviation %.1f%% of the expected share", worst * 100))
        await db.client.shutdown()
    }

    func interactive(seconds: Int) async throws {
        let db = try await freshDatabase("inter")
        try await backlog(db, tenant: "bulk", lane: .batch, jobs: 100_000, delayMs: 50)
        _ = try await db.postgres.query("UPDATE sluice.tenants SET max_concurrency = 10000")
        let workers = try startWorkers(url: db.url, processes: 2)
        try await Task.sleep(for: .seconds(2))
        let stats = try await steady(db, tenant: "bulk", lane: .interactive, rate: 20, seconds: seconds)
        stop(workers)
        print("interactive lane pickup while 100k batch jobs wait (same tenant): \(stats)")
        await db.client.shutdown()
    }

    // MARK: The bare-SQL limit

    /// Plain SQL on the same schema, no worker, no provider: claim 1,000 with SKIP LOCKED,
    /// complete them with one UPDATE, repeat. The ceiling the worker is measured against.
    func bareSQL(jobs: Int) async throws {
        let db = try await freshDatabase("bare")
        try await prefill(db.client, jobs: jobs)
        let start = clock.now
        var done = 0
        let loops = 2
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<loops {
                group.addTask {
                    var finished = 0
                    while true {
                        let claimed = try await db.postgres.query("""
                            WITH c AS (SELECT id FROM sluice.jobs WHERE state = 'queued' ORDER BY run_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
                            UPDATE sluice.jobs j SET state = 'running', attempt = attempt + 1, started_at = now(), lease_owner = 'bare',
                                   lease_expires_at = now() + interval '30 seconds'
                              FROM c WHERE j.id = c.id RETURNING j.id
                            """)
                        if claimed.rows.isEmpty { return finished }
                        let ids = try claimed.rows.map { try $0.decode(UUID.self, at: 0) }
                        _ = try await db.postgres.query(
                            "UPDATE sluice.jobs SET state = 'succeeded', finished_at = now(), lease_owner = NULL WHERE id = ANY($1)", [ids])
                        finished += ids.count
                    }
                }
            }
            for try await n in group { done += n }
        }
        let elapsed = seconds(clock.now - start)
        print(String(format: "bare SQL limit (2 loops: SKIP LOCKED claim of 1000 + one UPDATE to complete): %7.0f jobs/s", Double(done) / elapsed))
        await db.client.shutdown()
    }

    /// The store's own limit: what PostgreSQL can claim and complete through Sluice's SQL API
    /// with no worker around it. Two loops, each `sluice.claim` of `batch` jobs (fair queue,
    /// counters, triggers: the worker's statement) and one `sluice.finish_attempts` of them with
    /// an echo-shaped succeeded outcome (result, usage, attempt row), the JSON assembled from
    /// fixed parts so the client costs little. End to end divided by this is the share left to
    /// the worker's own CPU and scheduling.
    func storeLimit(jobs: Int, batch: Int = 128) async throws {
        let db = try await freshDatabase("store")
        try await prefill(db.client, jobs: jobs)
        _ = try await db.postgres.query("UPDATE sluice.tenants SET max_concurrency = 10000")
        _ = try await db.postgres.query("VACUUM ANALYZE sluice.jobs")
        let rest = #"","outcome":"succeeded","duration_ms":0.4,"http_status":200,"usage":{"input":12,"output":9,"cache_read":0,"cache_write":0},"cost_usd":0,"target_provider":"echo","target_model":"echo","result":{"output_text":"benchmark job with a realistic short prompt","tool_calls":[],"finish_reason":"stop","raw_response":{"id":"echo-1","object":"chat.completion","model":"echo","choices":[{"index":0,"message":{"role":"assistant","content":"benchmark job with a realistic short prompt"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}},"provider":"echo","model":"echo","latency_ms":0.4}}"#
        let claimSQL = "SELECT id, attempt FROM sluice.claim($1, \(batch), "
            + "ARRAY['interactive','high','normal','batch']::sluice.lane[], NULL, interval '60 seconds')"
        let start = clock.now
        var done = 0
        try await withThrowingTaskGroup(of: Int.self) { group in
            for loop in 0..<2 {
                group.addTask {
                    let worker = "store-bench-\(loop)"
                    var finished = 0
                    while true {
                        let claimed = try await db.postgres.query(claimSQL, [worker], prepared: true)
                        if claimed.rows.isEmpty { return finished }
                        var items = "["
                        for (k, row) in claimed.rows.enumerated() {
                            if k > 0 { items += "," }
                            items += #"{"id":""# + (try row.decode(UUID.self, at: 0)).uuidString.lowercased()
                                + #"","attempt":"# + String(try row.decode(Int.self, at: 1))
                                + #","started_at":"2026-01-01T00:00:00Z"# + rest
                        }
                        items += "]"
                        _ = try await db.postgres.query("SELECT count(*) FROM sluice.finish_attempts($1, $2::jsonb, false)", [worker, items],
                                                       prepared: true)
                        finished += claimed.rows.count
                    }
                }
            }
            for try await n in group { done += n }
        }
        let elapsed = seconds(clock.now - start)
        print(String(format: "SQL API limit (2 loops: sluice.claim of %d + sluice.finish_attempts of them, echo-shaped results): %7.0f jobs/s",
                     batch, Double(done) / elapsed))
        await db.client.shutdown()
    }
}
