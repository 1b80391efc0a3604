import Foundation
import Logging
import Sluice
import SluiceMockProvider
import SluicePostgres
import SluiceTestScope
import SluiceTestSupport
import Testing

/// Limits shared across real `sluice worker` processes through Redis, against the mock
/// provider over HTTP.
@Suite("Limiter across worker processes", .serialized, .workerDatabase)
struct LimiterProcessTests {
    /// `sluice worker` with the mock as its `openai` provider and the test run's Redis.
    func startWorkers(_ h: WorkerHarness, mock: RunningMockProvider, processes: Int, concurrency: Int,
                      redisURL: String?) throws -> ChildProcess {
        let scope = try TestScope.required(for: "a configuration file")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-limits-\(UUID().uuidString).yaml").path
        try """
        providers:
          - {name: openai, kind: openai, base_url: "\(mock.openAIBaseURL.absoluteString)", api_keys: [sk-test-limits-key]}
        """.write(toFile: path, atomically: false, encoding: .utf8)
        scope.onExit("configuration file") { try? FileManager.default.removeItem(atPath: path) }
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_DATABASE_URL"] = h.url
        environment["SLUICE_CONFIG"] = path
        environment["SLUICE_REDIS_URL"] = redisURL
        environment["OPENAI_API_KEY"] = nil
        environment["ANTHROPIC_API_KEY"] = nil
        return try ChildProcess.spawn(
            WorkerProcessTests.sluiceBinary.path,
            ["worker", "--processes", "\(processes)", "--concurrency", "\(concurrency)", "--poll-ms", "100",
             "--grace-seconds", "5", "--log-level", "warning"],
            environment: environment, standardError: .capture)
    }

    func startMock(_ h: WorkerHarness, rpm: Int?, window: Duration) async throws -> RunningMockProvider {
        let scope = try TestScope.required(for: "the mock provider")
        let mock = try await MockProviderServer.start(configuration: .init(port: 0, rpm: rpm, rateLimitWindow: window), logger: h.logger)
        scope.onExit("mock provider") { await mock.stop() }
        try await h.client.register(providers: [RegisteredProvider(name: "openai", kind: .openai, models: ["gpt-4o-mini"])])
        return mock
    }

    func job(_ text: String) -> JobSpec {
        JobSpec(tenant: "acme", provider: "openai", model: "gpt-4o-mini", request: chat(text), maxAttempts: 10)
    }

    @Test func oneProviderCooldownIsHonouredByEveryWorkerProcess() async throws {
        let h = try WorkerHarness.current
        let redisURL = try #require(ProcessInfo.processInfo.environment["SLUICE_TEST_REDIS_URL"])
        // No limit configured in Sluice: only the provider's own answers steer the workers.
        let mock = try await startMock(h, rpm: nil, window: .seconds(60))
        let workers = try startWorkers(h, mock: mock, processes: 2, concurrency: 2, redisURL: redisURL)
        _ = try await WorkerProcessTests().workerPIDs(h, count: 2)
        // One call is answered 429 with Retry-After: 6 s (once; its retry succeeds).
        let limited = try await h.client.enqueue(job("limited [[mock: status=429,retry_after_ms=6000,fail_times=1]]")).id
        try await AdmissionTests.eventually("the provider answers a 429") { mock.stats.requestsTotal >= 1 }
        // Ten more jobs for both processes: none may reach the provider during the cooldown.
        // A process that learns of the cooldown puts the job it claimed back and then leaves the
        // model out of its claims until the cooldown ends (no claim churn), so the others stay
        // queued without a reason.
        let more = try await h.client.enqueue(batch: (0..<10).map { job("more \($0)") }).map(\.id)
        try await AdmissionTests.eventually("a job waits for the cooldown") {
            try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'queued' AND wait_reason LIKE 'provider cooldown%'") >= 1
        }
        try await Task.sleep(for: .seconds(2))
        #expect(mock.stats.requestsTotal == 1, "calls were made during the cooldown")
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'queued'", [more]) == 10)
        // After the cooldown every job runs, each with exactly one result.
        for id in [limited] + more {
            #expect(try await h.client.wait(for: id, timeout: .seconds(60)).state == .succeeded)
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.results") == 11)
        #expect(mock.stats.requestsTotal == 12)
        workers.send(SIGTERM)
        #expect(await workers.waitForExit(timeout: .seconds(30)) == .exited(0), "\(workers.standardError())")
    }

    @Test func rateLimitHeadersAtZeroStopCallsBeforeAny429() async throws {
        let h = try WorkerHarness.current
        let redisURL = try #require(ProcessInfo.processInfo.environment["SLUICE_TEST_REDIS_URL"])
        // The provider allows 2 requests per 6-second window and says so in its headers.
        let mock = try await startMock(h, rpm: 2, window: .seconds(6))
        let workers = try startWorkers(h, mock: mock, processes: 2, concurrency: 1, redisURL: redisURL)
        _ = try await WorkerProcessTests().workerPIDs(h, count: 2)
        let first = try await h.client.enqueue(job("first")).id
        #expect(try await h.client.wait(for: first, timeout: .seconds(20)).state == .succeeded)
        let second = try await h.client.enqueue(job("second")).id
        #expect(try await h.client.wait(for: second, timeout: .seconds(20)).state == .succeeded)
        // "0 remaining, resets in ~6 s": the next jobs wait instead of drawing a 429.
        let ids = try await h.client.enqueue(batch: (0..<4).map { job("later \($0)") }).map(\.id)
        for id in ids {
            #expect(try await h.client.wait(for: id, timeout: .seconds(60)).state == .succeeded)
        }
        #expect(mock.stats.rateLimited <= 1, "\(mock.stats.rateLimited) calls answered 429")
        #expect(try await h.count("SELECT count(*) FROM sluice.attempts WHERE error_class = 'rate_limited'") == mock.stats.rateLimited)
        workers.send(SIGTERM)
        #expect(await workers.waitForExit(timeout: .seconds(30)) == .exited(0), "\(workers.standardError())")
    }

    @Test func workerWithLimitsButNoRedisRefusesToStart() async throws {
        let h = try WorkerHarness.current
        let mock = try await startMock(h, rpm: 100, window: .seconds(60))
        _ = try await JobStore(postgres: h.postgres).setModelLimits(provider: "openai", model: "gpt-4o-mini", rpm: 100)
        let workers = try startWorkers(h, mock: mock, processes: 1, concurrency: 2, redisURL: nil)
        let status = await workers.waitForExit(timeout: .seconds(30))
        #expect(status == .exited(78), "EX_CONFIG: restarting would not help")
        #expect(workers.standardError().contains("SLUICE_REDIS_URL"), "\(workers.standardError())")
    }

    /// Redis down when a worker process starts is an outage, not a configuration error: the
    /// process exits 69 and the supervisor keeps restarting it (with backoff) until Redis
    /// answers; then the queued job runs.
    @Test func workerStartingWhileRedisIsDownRunsOnceRedisAnswers() async throws {
        let h = try WorkerHarness.current
        let mock = try await startMock(h, rpm: nil, window: .seconds(60))
        _ = try await JobStore(postgres: h.postgres).setModelLimits(provider: "openai", model: "gpt-4o-mini", rpm: 600)
        let redis = try RedisServerProcess()
        let workers = try startWorkers(h, mock: mock, processes: 1, concurrency: 2, redisURL: redis.url)
        let id = try await h.client.enqueue(job("after the outage")).id
        try await AdmissionTests.eventually("the worker process exits 69 and is restarted") {
            workers.standardError().contains("exiting to be restarted") && workers.standardError().contains("restarting")
        }
        #expect(try await h.client.job(id)?.state == .queued, "nothing runs while Redis is down")
        #expect(workers.exitStatus == nil, "the supervisor stays up")
        try await redis.start()
        #expect(try await h.client.wait(for: id, timeout: .seconds(60)).state == .succeeded, "\(workers.standardError())")
        workers.send(SIGTERM)
        #expect(await workers.waitForExit(timeout: .seconds(30)) == .exited(0), "\(workers.standardError())")
    }
}
