import ArgumentParser
import Foundation
import Logging
import Sluice
import SluiceJSON
import SluiceMockProvider
import SluicePostgres
import SluiceRedis
import SluiceWorker

/// `sluice-bench limits`: the limiter's benchmarks — admission latency and round trips, how much
/// of a provider's limit real workers use (and how many 429s they draw), hard-budget overshoot,
/// and the end-to-end cost of limits that do not bind.
struct LimitsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limits", abstract: "Rate-limit admission, utilisation, budget overshoot and overhead benchmarks.")

    @Option(help: "Seconds of each utilisation run (the issue's figure is 180).") var seconds: Int = 180
    @Option(help: "Jobs for the overhead runs.") var jobs: Int = 50_000
    @Option(help: "Only these sections (admission,utilisation,utilisation-lower,overhead).") var only: String?
    @Option(help: "Rounds of the overhead comparison (each: no limits, leased limits, per-job limits, back to back).")
    var overheadRounds: Int = 2
    @Option(help: "Extra arguments for the utilisation runs' workers, space-separated (e.g. --no-skip-limited-models).")
    var workerArgs: String = ""

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        guard let base = ProcessInfo.processInfo.environment["SLUICE_BENCH_DATABASE_URL"],
              let redisURL = ProcessInfo.processInfo.environment["SLUICE_BENCH_REDIS_URL"],
              let bin = ProcessInfo.processInfo.environment["SLUICE_BIN_DIR"] else {
            throw ValidationError("run through scripts/bench limits")
        }
        let sections = Set((only ?? "admission,utilisation,utilisation-lower,overhead").split(separator: ",").map(String.init))
        let bench = Bench(base: base, bin: bin, logger: logger)
        let redis = RedisClient(configuration: try RedisConfiguration(url: redisURL), pool: .init(maxConnections: 16), logger: logger)
        if sections.contains("admission") { try await admission(redis) }
        if sections.contains("utilisation") { try await utilisation(bench, redisURL: redisURL, providerFactor: 1.0) }
        if sections.contains("utilisation-lower") { try await utilisation(bench, redisURL: redisURL, providerFactor: 0.8) }
        if sections.contains("overhead") { try await overhead(bench, redisURL: redisURL) }
        await redis.shutdown()
    }

    /// One admission + one settlement per job, as a worker does, with a model's RPM and TPM
    /// buckets, a tenant's RPM and TPM buckets and a daily token budget (limits that never bind).
    func admission(_ redis: RedisClient) async throws {
        let limiter = RateLimiter(redis: redis, prefix: "bench-" + UUID().uuidString.prefix(8).lowercased())
        func request(_ i: Int) -> RateLimiter.Request {
            func bucket(_ key: String, _ perMinute: Double, _ amount: Double) -> RateLimiter.Bucket {
                .init(key: limiter.key("rl", key), capacity: perMinute, refillPerMillisecond: perMinute / 60_000, amount: amount,
                      floorFraction: 0.1, settle: { Double($0.inputTokens + $0.outputTokens) })
            }
            return .init(reservation: "job-\(i):1", buckets: [
                bucket("m:openai/gpt-4o:rpm", 1e9, 1), bucket("m:openai/gpt-4o:tpm", 1e12, 1200),
                bucket("t:acme:rpm", 1e9, 1), bucket("t:acme:tpm", 1e12, 1200),
            ], cooldowns: [limiter.key("cool", "openai/gpt-4o")],
            budgets: [.init(key: limiter.key("budget", "acme", "d:bench", "tok"), limit: 1e15, amount: 1200, seed: 0, ttlSeconds: 600,
                            countsTokens: true)], reservationTTL: .seconds(600))
        }
        let clock = ContinuousClock()
        for callers in [1, 16] {
            let perCaller = callers == 1 ? 5_000 : 1_000
            let start = clock.now
            let samples = try await withThrowingTaskGroup(of: [Double].self) { group in
                for c in 0..<callers {
                    group.addTask {
                        var samples: [Double] = []
                        for i in 0..<perCaller {
                            let r = request(c * 1_000_000 + i)
                            let t0 = clock.now
                            _ = try await limiter.admit(r)
                            samples.append((clock.now - t0).seconds * 1000)
                            try await limiter.settle(r, usage: .init(inputTokens: 300, outputTokens: 200, costUSD: 0.001))
                        }
                        return samples
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let elapsed = (clock.now - start).seconds
            print(String(format: "admission (4 buckets + cooldown + budget), %d caller(s): %.0f admissions+settlements/s; admission %@; 2 Redis round trips per job",
                         callers, Double(samples.count) / elapsed, Stats(samples: samples).description))
        }
    }

    /// 4 worker processes against the mock provider limiting 600 RPM and 100k TPM per minute
    /// (times `providerFactor`), Sluice configured for 600 RPM / 100k TPM, a backlog of
    /// mixed-size jobs from 3 tenants in all lanes. Reports the share of the binding limit used
    /// and the share of calls answered 429.
    func utilisation(_ bench: Bench, redisURL: String, providerFactor: Double) async throws {
        let rpm = 600, tpm = 100_000
        let providerRPM = Int(Double(rpm) * providerFactor), providerTPM = Int(Double(tpm) * providerFactor)
        let db = try await bench.freshDatabase("util")
        var logger = Logger(label: "mock")
        logger.logLevel = .error
        let mock = try await MockProviderServer.start(configuration: .init(port: 0, rpm: providerRPM, tpm: providerTPM), logger: logger)
        try await db.client.register(providers: [RegisteredProvider(name: "openai", kind: .openai, models: ["gpt-4o-mini"])])
        let store = JobStore(postgres: db.postgres)
        _ = try await store.setModelLimits(provider: "openai", model: "gpt-4o-mini", rpm: rpm, tpm: tpm)
        // Mixed sizes: prompts of 50-2,000 characters (~12-500 tokens), max_tokens 64-1,024.
        var random = SystemRandomNumberGenerator()
        let lanes: [Lane] = [.interactive, .high, .normal, .batch]
        let count = max(2_000, rpm * seconds / 60 * 2)
        let specs = (0..<count).map { i -> JobSpec in
            let words = Int.random(in: 10...400, using: &random)
            let text = (0..<words).map { _ in "word" }.joined(separator: " ")
            return JobSpec(tenant: ["t-a", "t-b", "t-c"][i % 3], lane: lanes[i % 4], provider: "openai", model: "gpt-4o-mini",
                           request: JSONDocument(#"{"messages":[{"role":"user","content":"\#(text) [[mock: tokens=32]]"}]}"#),
                           maxOutputTokens: [64, 128, 256, 512, 1024][Int.random(in: 0...4, using: &random)], maxAttempts: 20)
        }
        for offset in stride(from: 0, to: specs.count, by: 5_000) {
            _ = try await db.client.enqueue(batch: Array(specs[offset..<min(offset + 5_000, specs.count)]))
        }
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("bench-limits-\(UUID().uuidString).yaml").path
        try "providers:\n  - {name: openai, kind: openai, base_url: \"\(mock.openAIBaseURL.absoluteString)\", api_keys: [sk-bench]}\n"
            .write(toFile: config, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: config) }
        // Earlier runs' buckets and cooldowns are not carried over.
        let flusher = RedisClient(configuration: try RedisConfiguration(url: redisURL), logger: logger)
        _ = try? await flusher.command(["FLUSHDB"])
        await flusher.shutdown()
        // Claims released without a start (a job claimed, then put back by admission): counted
        // by a trigger of the benchmark's own on running → queued with the attempt given back.
        _ = try await db.postgres.query("CREATE UNLOGGED TABLE public.bench_putbacks (at timestamptz NOT NULL)")
        _ = try await db.postgres.query("""
            CREATE FUNCTION public.bench_putback() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO public.bench_putbacks VALUES (clock_timestamp()); RETURN NULL; END $$
            """)
        _ = try await db.postgres.query("""
            CREATE TRIGGER bench_putback AFTER UPDATE ON sluice.jobs FOR EACH ROW
            WHEN (OLD.state = 'running' AND NEW.state = 'queued' AND NEW.attempt < OLD.attempt)
            EXECUTE FUNCTION public.bench_putback()
            """)
        let load = Bench.loadAverage()
        let workers = try bench.startWorkers(url: db.url, processes: 4, concurrency: 64,
                                             extra: ["--redis-url", redisURL, "--config", config]
                                                + workerArgs.split(separator: " ").map(String.init))
        let start = Date()
        try await Task.sleep(for: .seconds(seconds))
        let end = Date()
        bench.stop(workers)
        let putBacks = try await db.postgres.query(
            "SELECT count(*)::int FROM public.bench_putbacks WHERE at BETWEEN \(start)::timestamptz AND \(end)::timestamptz")
            .rows[0].decode(Int.self, at: 0)
        let stats = mock.stats
        let window = try await db.postgres.query("""
            SELECT count(*)::int, coalesce(sum(r.input_tokens + r.cache_read_tokens + j.max_output_tokens), 0)::int
              FROM sluice.jobs j JOIN sluice.results r ON r.job_id = j.id
             WHERE j.finished_at BETWEEN \(start)::timestamptz AND \(end)::timestamptz
            """)
        let done = try window.rows[0].decode(Int.self, at: 0)
        let charged = try window.rows[0].decode(Int.self, at: 1)
        let deferred = try await bench.count(db.postgres, "SELECT count(*) FROM sluice.jobs WHERE wait_reason IS NOT NULL")
        // When the 429s came: seconds after the workers started (the first burst, before any
        // response carried the provider's limit, or later at its window boundaries?).
        let limitedAt = try await db.postgres.query(
            "SELECT coalesce(string_agg(round(extract(epoch FROM started_at - \(start)::timestamptz))::text, ',' ORDER BY started_at), '') FROM sluice.attempts WHERE error_class = 'rate_limited'")
            .rows[0].decode(String.self, at: 0)
        let minutes = end.timeIntervalSince(start) / 60
        let rpmUse = Double(done) / minutes / Double(providerRPM)
        let tpmUse = Double(charged) / minutes / Double(providerTPM)
        print(String(format: """
            utilisation, provider limit %d RPM / %dk TPM, Sluice configured %d RPM / %dk TPM, 4 processes, %.1f min: \
            %d calls succeeded (%.0f/min), %.0f charged tokens/min; binding limit %@ used %.1f %%; \
            %d of %d calls answered 429 (%.2f %%); %d jobs waiting at the end; %d claims released without a start \
            (%.0f per 1,000 jobs started)%@; 429s at [%@] s; load average %@
            """, providerRPM, providerTPM / 1000, rpm, tpm / 1000, minutes, done, Double(done) / minutes, Double(charged) / minutes,
                     tpmUse >= rpmUse ? "TPM" : "RPM", max(tpmUse, rpmUse) * 100, stats.rateLimited, stats.requestsTotal,
                     stats.requestsTotal > 0 ? Double(stats.rateLimited) / Double(stats.requestsTotal) * 100 : 0, deferred,
                     putBacks, Double(putBacks) / Double(max(stats.requestsTotal, 1)) * 1000,
                     workerArgs.isEmpty ? "" : " [workers: \(workerArgs)]", limitedAt, load))
        await mock.stop()
        await db.client.shutdown()
    }

    /// The echo provider end to end with no limit configured, with model and tenant limits that
    /// never bind admitted from capacity leases (the default), and the same limits decided per
    /// job in Redis (`--no-limit-leasing`: every start takes from 4 buckets and settles), back
    /// to back, `overheadRounds` times.
    func overhead(_ bench: Bench, redisURL: String) async throws {
        let modes = Array(repeating: ["none", "leased", "per-job"], count: max(1, overheadRounds)).flatMap { $0 }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let redis = RedisClient(configuration: try RedisConfiguration(url: redisURL), logger: logger)
        defer { Task { await redis.shutdown() } }
        // Script calls (EVALSHA) the workers made: Redis round trips of the limiter.
        func scriptCalls() async throws -> Int {
            let info = try await redis.command(["INFO", "commandstats"]).string ?? ""
            guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_evalsha:") }),
                  let calls = line.split(separator: ",").first?.split(separator: "=").last else { return 0 }
            return Int(calls) ?? 0
        }
        for mode in modes {
            let limited = mode != "none"
            let db = try await bench.freshDatabase("over")
            for offset in stride(from: 0, to: jobs, by: 10_000) {
                _ = try await db.client.enqueue(batch: (offset..<min(offset + 10_000, jobs)).map { bench.spec("tenant-\($0 % 10)", $0) })
            }
            _ = try await db.postgres.query("UPDATE sluice.tenants SET max_concurrency = 10000")
            if limited {
                _ = try await JobStore(postgres: db.postgres).setModelLimits(provider: "echo", model: "echo", rpm: 100_000_000, tpm: 1_000_000_000)
                _ = try await db.postgres.query("UPDATE sluice.tenants SET rpm = 100000000, tpm = 1000000000")
            }
            _ = try await db.postgres.query("VACUUM ANALYZE sluice.jobs")
            let load = Bench.loadAverage()
            let callsBefore = try await scriptCalls()
            let workers = try bench.startWorkers(url: db.url, processes: 2, concurrency: 512,
                                                 extra: limited ? ["--redis-url", redisURL] + (mode == "per-job" ? ["--no-limit-leasing"] : []) : [])
            while try await db.postgres.query("SELECT EXISTS (SELECT 1 FROM sluice.jobs WHERE state IN ('queued','running'))")
                    .rows[0].decode(Bool.self, at: 0) {
                try await Task.sleep(for: .milliseconds(500))
            }
            bench.stop(workers)
            let calls = try await scriptCalls() - callsBefore
            let span = try await db.postgres.query(
                "SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8, count(*) FILTER (WHERE state = 'succeeded') FROM sluice.jobs")
            let elapsed = try span.rows[0].decode(Double.self, at: 0)
            let succeeded = try span.rows[0].decode(Int.self, at: 1)
            let label = mode == "none" ? "no limits" : mode == "leased"
                ? "limits configured, not binding (model + tenant RPM/TPM), leased" : "same limits, decided per job (--no-limit-leasing)"
            print(String(format: "overhead: echo end to end, 2 processes x 512 slots, %@: %d jobs in %.2f s = %7.0f jobs/s; %.3f limiter script calls per job (load average before: %@)",
                         label, succeeded, elapsed, Double(succeeded) / elapsed, Double(calls) / Double(max(succeeded, 1)), load))
            await db.client.shutdown()
        }
    }
}

extension Bench {
    /// `/proc/loadavg`'s three figures, to print beside a measurement.
    static func loadAverage() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "?" }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }
}
