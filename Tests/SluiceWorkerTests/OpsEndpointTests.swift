import Foundation
import Logging
import Sluice
import SluiceHTTP
import SluiceJSON
import SluiceMockProvider
import SluicePostgres
import SluiceTestScope
import SluiceTestSupport
import SluiceWorker
import Testing

/// `sluice worker --metrics-port`: real worker processes serving /metrics, /healthz and /readyz,
/// scraped over HTTP and parsed by the Prometheus reference parser (prometheus_client, through
/// scripts/scrape-metrics); JSON log lines on stderr.
@Suite("Operations endpoints", .serialized, .workerDatabase)
struct OpsEndpointTests {
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Two consecutive free loopback ports (bound and released; the worker binds them next).
    static func freePortPair() throws -> Int { try LoopbackPort.freePair() }

    func startWorkers(_ h: WorkerHarness, port: Int, extra: [String] = [], environment extraEnvironment: [String: String] = [:]) throws -> ChildProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_DATABASE_URL"] = h.url
        environment["OPENAI_API_KEY"] = nil
        environment["ANTHROPIC_API_KEY"] = nil
        environment["SLUICE_LOG_FORMAT"] = nil
        environment.merge(extraEnvironment) { $1 }
        return try ChildProcess.spawn(
            WorkerProcessTests.sluiceBinary.path,
            ["worker", "--processes", "2", "--concurrency", "8", "--lease-seconds", "1.5", "--poll-ms", "100",
             "--grace-seconds", "5", "--metrics-host", "127.0.0.1", "--metrics-port", "\(port)",
             "--queue-sample-seconds", "1"] + extra,
            environment: environment, standardError: .capture)
    }

    /// Status and body of a GET (nil when nothing answers).
    func get(_ http: HTTPClient, _ url: String) async -> (status: Int, body: String)? {
        do {
            let response = try await http.execute(HTTPRequest(url: url, timeouts: .init(connect: .seconds(2), total: .seconds(5))))
            return (response.status, String(decoding: try await response.body.collect(upTo: 1 << 22), as: UTF8.self))
        } catch {
            return nil
        }
    }

    /// Polls `url` until its status is `status` (at most `seconds`).
    func waitForStatus(_ http: HTTPClient, _ url: String, _ status: Int, seconds: Int = 30) async throws -> String {
        var last: (Int, String)?
        for _ in 0..<(seconds * 10) {
            if let answer = await get(http, url) {
                if answer.status == status { return answer.body }
                last = answer
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure("\(url) did not answer \(status) within \(seconds) s (last: \(String(describing: last)))")
    }

    /// The families of one scrape, parsed by prometheus_client: name → (type, samples).
    struct Scrape {
        struct Sample {
            var name: String
            var labels: [String: String]
            var value: Double
        }
        var contentType: String
        var types: [String: String]
        var help: [String: String]
        var samples: [Sample]

        func values(_ name: String, _ labels: [String: String] = [:]) -> [Double] {
            samples.filter { sample in sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value } }.map(\.value)
        }

        func sum(_ name: String, _ labels: [String: String] = [:]) -> Double { values(name, labels).reduce(0, +) }
    }

    func scrape(_ port: Int) async throws -> Scrape {
        let script = Self.root.appendingPathComponent("scripts/scrape-metrics").path
        let run = try await ChildProcess.run("python3", [script, "http://127.0.0.1:\(port)/metrics"], timeout: .seconds(60))
        guard run.status == .exited(0) else { throw Failure("scrape-metrics failed: \(run.status): \(run.standardError)") }
        guard case .object(let root) = try JSONValue.parse(Array(run.standardOutput.utf8)),
              case .object(let families)? = root["families"], case .string(let contentType)? = root["content_type"]
        else { throw Failure("unexpected scrape-metrics output") }
        var scrape = Scrape(contentType: contentType, types: [:], help: [:], samples: [])
        for (name, family) in families {
            guard case .object(let fields) = family, case .string(let type)? = fields["type"],
                  case .array(let samples)? = fields["samples"] else { continue }
            scrape.types[name] = type
            if case .string(let help)? = fields["help"] { scrape.help[name] = help }
            for sample in samples {
                guard case .object(let s) = sample, case .string(let sampleName)? = s["name"],
                      case .object(let labels)? = s["labels"], case .number(let value)? = s["value"] else { continue }
                var labelValues: [String: String] = [:]
                for (key, value) in labels { if case .string(let text) = value { labelValues[key] = text } }
                scrape.samples.append(.init(name: sampleName, labels: labelValues, value: value))
            }
        }
        return scrape
    }

    @Test func metricsParseAndCountTheWork() async throws {
        let h = try WorkerHarness.current
        let port = try Self.freePortPair()
        let workers = try startWorkers(h, port: port)
        let http = HTTPClient(logger: h.logger)
        defer { Task { await http.shutdown() } }
        for index in 0..<2 {
            #expect(try await waitForStatus(http, "http://127.0.0.1:\(port + index)/healthz", 200) == "ok\n")
            _ = try await waitForStatus(http, "http://127.0.0.1:\(port + index)/readyz", 200)
        }
        // 6 that succeed, 2 that fail once with a rate limit (Retry-After 50 ms) then succeed,
        // 1 that is dead at once (not retryable).
        var specs = (0..<6).map { _ in echo("acme", "ok") }
        specs += (0..<2).map { _ in
            echo("acme", "limited", lane: .high,
                 metadata: #"{"echo_fail":"rate_limited","echo_fail_attempts":1,"echo_retry_after_ms":50}"#)
        }
        specs.append(echo("acme", "bad", lane: .batch, metadata: #"{"echo_fail":"invalid_request"}"#))
        let ids = try await h.client.enqueue(batch: specs).map(\.id)
        for id in ids { _ = try await h.client.wait(for: id, timeout: .seconds(30)) }

        // Both processes export; counters summed over them describe the work exactly. The
        // completion write may trail the job's end by a moment, and the queue sampler's last
        // sample (every second) may predate the last claims: wait for the sums and a sample of
        // the drained queue.
        var scrapes: [Scrape] = []
        for _ in 0..<50 {
            scrapes = [try await scrape(port), try await scrape(port + 1)]
            let attempts = scrapes.map { $0.sum("sluice_job_attempts_total") }.reduce(0, +)
            let samplers = scrapes.filter { $0.values("sluice_queue_sampler") == [1] }
            let drained = samplers.first.map { !$0.values("sluice_queue_depth").isEmpty && $0.sum("sluice_queue_depth") == 0 } ?? false
            if attempts >= 11 && samplers.count == 1 && drained { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        func total(_ name: String, _ labels: [String: String] = [:]) -> Double { scrapes.map { $0.sum(name, labels) }.reduce(0, +) }
        #expect(total("sluice_jobs_claimed_total") == 11)
        #expect(total("sluice_jobs_claimed_total", ["lane": "high", "provider": "echo", "model": "echo"]) == 4)
        #expect(total("sluice_job_attempts_total", ["outcome": "succeeded"]) == 8)
        #expect(total("sluice_job_attempts_total", ["outcome": "retried", "lane": "high"]) == 2)
        #expect(total("sluice_job_attempts_total", ["outcome": "dead", "lane": "batch"]) == 1)
        #expect(total("sluice_provider_errors_total", ["error_class": "rate_limited"]) == 2)
        #expect(total("sluice_provider_errors_total", ["error_class": "invalid_request"]) == 1)
        #expect(abs(total("sluice_provider_retry_after_seconds_total") - 0.1) < 0.001)
        #expect(total("sluice_tokens_total", ["kind": "output"]) > 0)
        #expect(total("sluice_provider_latency_seconds_count") == 11)
        #expect(total("sluice_job_pickup_latency_seconds_count") == 11)
        #expect(total("sluice_store_statement_duration_seconds_count", ["statement": "claim"]) >= 2)
        #expect(total("sluice_store_statement_duration_seconds_count", ["statement": "finish_attempts"]) >= 1)
        #expect(total("sluice_worker_slots") == 16)

        // Exactly one process samples the queue; only it exports the queue series (empty queue: zeros).
        let samplers = scrapes.filter { $0.values("sluice_queue_sampler") == [1] }
        let others = scrapes.filter { $0.values("sluice_queue_sampler") == [0] }
        #expect(samplers.count == 1 && others.count == 1)
        if let sampler = samplers.first, let other = others.first {
            #expect(Set(sampler.samples.filter { $0.name == "sluice_queue_depth" }.compactMap { $0.labels["lane"] })
                    == ["interactive", "high", "normal", "batch"])
            #expect(sampler.sum("sluice_queue_depth") == 0)
            #expect(sampler.sum("sluice_queue_oldest_age_seconds") == 0)
            #expect(other.values("sluice_queue_depth").isEmpty)
        }

        // Names and types as documented (WorkerMetrics.definitions), with their help texts.
        // The parser names a counter family without its `_total` suffix.
        #expect(scrapes[0].contentType.hasPrefix("text/plain; version=0.0.4"))
        for definition in WorkerMetrics.definitions {
            let family = definition.kind == .counter ? String(definition.name.dropLast("_total".count)) : definition.name
            guard let type = scrapes.compactMap({ $0.types[family] }).first else {
                // Series that exist only after their event: rescues, waits, demotions, in a run without any.
                #expect(definition.name == WorkerMetrics.jobsRescued || definition.name == WorkerMetrics.rateLimitWaits
                        || definition.name == WorkerMetrics.budgetDemotions
                        || definition.name == WorkerMetrics.routeFallbacks || definition.name.hasPrefix("sluice_queue_"),
                        "\(definition.name) missing from /metrics")
                continue
            }
            #expect(type == definition.kind.rawValue, "\(definition.name)")
            #expect(scrapes.compactMap({ $0.help[family] }).first == definition.help, "\(definition.name)")
        }
        for name in scrapes.flatMap(\.types.keys) {
            #expect(name.hasPrefix("sluice_"), "unexpected metric \(name)")
        }

        // A new backlog shows up in the sampler's gauges within a sample or two.
        _ = try await h.client.enqueue(batch: (0..<3).map { _ in echo("acme", "later", lane: .batch, runAt: Date().addingTimeInterval(3600)) })
        var scheduled = 0.0
        for _ in 0..<50 {
            scheduled = try await [scrape(port), scrape(port + 1)].map { $0.sum("sluice_queue_scheduled", ["lane": "batch"]) }.reduce(0, +)
            if scheduled == 3 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(scheduled == 3)

        workers.send(SIGTERM)
        let status = await workers.waitForExit(timeout: .seconds(30))
        #expect(status == .exited(0))

        // Logs: JSON lines only, with the supervisor's ports and the dead job's id, tenant and attempt.
        var lines: [[String: JSONValue]] = []
        for line in workers.standardError().split(separator: "\n") where !line.isEmpty {
            guard case .object(let fields) = try? JSONValue.parse(Array(line.utf8)) else {
                Issue.record("not a JSON log line: \(line)")
                continue
            }
            #expect(fields["timestamp"] != nil && fields["level"] != nil && fields["message"] != nil)
            lines.append(fields)
        }
        let start = lines.first { $0["message"] == .string("supervisor starting workers") }
        #expect(start?["metrics_ports"] == .string("\(port),\(port + 1)"))
        let dead = lines.first { $0["message"] == .string("job dead-lettered") }
        #expect(dead?["job_id"] == .string(ids[8].uuidString))
        #expect(dead?["tenant"] == .string("acme"))
        #expect(dead?["attempt"] == .string("1"))
        #expect(dead?["level"] == .string("warning"))
        #expect(!workers.standardError().contains("\"bad\""), "prompts never reach the logs")
    }

    @Test func readyzFollowsPostgres() async throws {
        let h = try WorkerHarness.current
        let port = try Self.freePortPair()
        let workers = try startWorkers(h, port: port, extra: ["--log-level", "critical"])
        let http = HTTPClient(logger: h.logger)
        defer { Task { await http.shutdown() } }
        let ready = "http://127.0.0.1:\(port + 1)/readyz"
        _ = try await waitForStatus(http, ready, 200)

        // Take the database away from everyone: no new sessions, existing ones terminated.
        guard let adminURL = ProcessInfo.processInfo.environment["SLUICE_TEST_DATABASE_URL"] else { throw Failure("SLUICE_TEST_DATABASE_URL") }
        let admin = PostgresClient(configuration: try PostgresConfiguration(url: adminURL), pool: .init(maxConnections: 1), logger: h.logger)
        defer { Task { await admin.shutdown() } }
        let name = h.name
        _ = try await admin.query("ALTER DATABASE \"\(name)\" ALLOW_CONNECTIONS false", [])
        do {
            _ = try await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [name])
            let body = try await waitForStatus(http, ready, 503)
            #expect(body.contains("\"postgres\""), "\(body)")
            #expect(body.contains("\"ready\":false"), "\(body)")
            // Liveness does not depend on the database.
            #expect(await get(http, "http://127.0.0.1:\(port + 1)/healthz")?.status == 200)
        } catch {
            _ = try? await admin.query("ALTER DATABASE \"\(name)\" ALLOW_CONNECTIONS true", [])
            throw error
        }
        _ = try await admin.query("ALTER DATABASE \"\(name)\" ALLOW_CONNECTIONS true", [])
        _ = try await waitForStatus(http, ready, 200)
        _ = try await waitForStatus(http, "http://127.0.0.1:\(port)/readyz", 200)

        workers.send(SIGTERM)
        #expect(await workers.waitForExit(timeout: .seconds(30)) == .exited(0))
    }

    /// A private redis-server for one test (SIGKILLed and reaped when the test ends).

    @Test func readyzFollowsRedisAndDraining() async throws {
        let h = try WorkerHarness.current
        let redis = try RedisServerProcess()
        try await redis.start()
        let redisPort = redis.port
        let port = try Self.freePortPair()
        let workers = try startWorkers(h, port: port, extra: ["--log-level", "warning"],
                                       environment: ["SLUICE_REDIS_URL": "redis://127.0.0.1:\(redisPort)"])
        let http = HTTPClient(logger: h.logger)
        defer { Task { await http.shutdown() } }
        let ready = "http://127.0.0.1:\(port)/readyz"
        // On failure, say what the workers logged.
        func waitForReady(_ status: Int) async throws -> String {
            do { return try await waitForStatus(http, ready, status) } catch {
                throw Failure("\(error); workers' stderr: \(workers.standardError().suffix(4000))")
            }
        }
        _ = try await waitForReady(200)
        // Both processes have started their workers (readiness does not wait for that).
        _ = try await WorkerProcessTests().workerPIDs(h, count: 2)

        await redis.stop()
        let body = try await waitForReady(503)
        #expect(body.contains("\"redis\""), "\(body)")
        #expect(!body.contains("\"postgres\""), "\(body)")
        try await redis.start()
        _ = try await waitForReady(200)

        // Draining: after SIGTERM the process running a slow job answers 503 "draining" until
        // the job is done, and exits 0.
        let id = try await h.client.enqueue(echo("acme", "slow", metadata: #"{"echo_delay_ms":4000}"#)).id
        var owner: String?
        for _ in 0..<100 {
            owner = try await h.client.job(id)?.leaseOwner
            if owner != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let pids = try await h.postgres.query("SELECT pid FROM sluice.workers ORDER BY pid", []).rows.map { try $0.decode(Int32.self, at: 0) }
        workers.send(SIGTERM)
        var sawDraining = false
        for _ in 0..<30 where !sawDraining {
            for index in 0..<2 {
                if let answer = await get(http, "http://127.0.0.1:\(port + index)/readyz"), answer.status == 503,
                   answer.body.contains("\"draining\"") {
                    sawDraining = true
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(sawDraining, "no process answered 503 draining (owner \(owner ?? "none"), workers \(pids))")
        let exit = await workers.waitForExit(timeout: .seconds(30))
        #expect(exit == .exited(0), "\(String(describing: exit)); workers' stderr: \(workers.standardError().suffix(4000))")
        #expect(try await h.client.job(id)?.state == .succeeded)
    }

    /// A real provider call over HTTP (the mock, OpenAI wire format): a 429 with Retry-After,
    /// then success; the 429, the Retry-After wait, tokens, cost and TTFT show on /metrics.
    @Test func providerCallsAreMeasured() async throws {
        let h = try WorkerHarness.current
        let scope = try TestScope.required(for: "the mock provider")
        let mock = try await MockProviderServer.start(configuration: .init(port: 0), logger: h.logger)
        scope.onExit("mock provider") { await mock.stop() }
        try await h.client.register(providers: [RegisteredProvider(name: "openai", kind: .openai, models: ["gpt-4o-mini"])])
        let port = try Self.freePortPair()
        let workers = try startWorkers(h, port: port, extra: ["--log-level", "info"], environment: [
            "OPENAI_BASE_URL": mock.openAIBaseURL.absoluteString, "OPENAI_API_KEY": "sk-test-openai-key-0001",
        ])
        let http = HTTPClient(logger: h.logger)
        defer { Task { await http.shutdown() } }
        _ = try await waitForStatus(http, "http://127.0.0.1:\(port)/readyz", 200)
        let id = try await h.client.enqueue(JobSpec(
            tenant: "acme", lane: .interactive, provider: "openai", model: "gpt-4o-mini",
            request: chat("measure me [[mock: status=429, retry_after_ms=200, fail_times=1, tokens=7]]"))).id
        let job = try await h.client.wait(for: id, timeout: .seconds(30))
        #expect(job.state == .succeeded)
        #expect(job.attempt == 2)

        let labels = ["provider": "openai", "model": "gpt-4o-mini"]
        var scrapes: [Scrape] = []
        for _ in 0..<50 {
            scrapes = [try await scrape(port), try await scrape(port + 1)]
            if scrapes.map({ $0.sum("sluice_job_attempts_total", ["outcome": "succeeded"]) }).reduce(0, +) == 1 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        func total(_ name: String, _ extra: [String: String] = [:]) -> Double {
            scrapes.map { $0.sum(name, labels.merging(extra) { $1 }) }.reduce(0, +)
        }
        #expect(total("sluice_provider_rate_limited_total") == 1)
        #expect(abs(total("sluice_provider_retry_after_seconds_total") - 0.2) < 0.001)
        #expect(total("sluice_provider_errors_total", ["error_class": "rate_limited"]) == 1)
        #expect(total("sluice_job_attempts_total", ["outcome": "retried", "lane": "interactive"]) == 1)
        #expect(total("sluice_tokens_total", ["kind": "output"]) == 7)
        #expect(total("sluice_tokens_total", ["kind": "input"]) > 0)
        #expect(total("sluice_cost_usd_total") > 0)
        #expect(total("sluice_provider_ttft_seconds_count") == 1)
        #expect(total("sluice_provider_latency_seconds_count") == 2)
        #expect(scrapes.map { $0.sum("sluice_provider_calls_in_flight", ["provider": "openai"]) }.reduce(0, +) == 0)

        workers.send(SIGTERM)
        #expect(await workers.waitForExit(timeout: .seconds(30)) == .exited(0))
        #expect(!workers.standardError().contains("sk-test-openai-key-0001"))
    }
}
