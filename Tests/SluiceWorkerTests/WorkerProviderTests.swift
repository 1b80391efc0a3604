import Foundation
import Logging
import Sluice
import SluiceHTTP
import SluiceMockProvider
import SluicePostgres
import SluiceProviders
import SluiceSupport
import SluiceTestScope
import SluiceTestSupport
import SluiceWorker
import Testing

/// Jobs run end to end through the worker against the mock provider over real HTTP, with the
/// OpenAI and Anthropic wire formats, failures, retries and cost accounting.
@Suite("Worker against the mock provider", .workerDatabase)
struct WorkerProviderTests {
    struct Setup {
        let h: WorkerHarness
        let mock: RunningMockProvider
        let http: HTTPClient
        let registry: ProviderRegistry
    }

    /// The mock provider and the HTTP client are stopped when the test ends (before its
    /// database is dropped).
    func setUp() async throws -> Setup {
        let h = try WorkerHarness.current
        let scope = try TestScope.required(for: "the mock provider")
        let mock = try await MockProviderServer.start(configuration: .init(port: 0), logger: h.logger)
        scope.onExit("mock provider") { await mock.stop() }
        let http = HTTPClient(logger: h.logger)
        scope.onExit("HTTP client") { await http.shutdown() }
        let configuration = ProvidersConfiguration(providers: [
            .init(name: "echo", kind: .echo),
            .init(name: "openai", kind: .openai, baseURL: mock.openAIBaseURL.absoluteString, apiKeys: [Redacted("sk-test-openai-key")],
                  timeouts: .init(idle: .seconds(2))),
            .init(name: "anthropic", kind: .anthropic, baseURL: mock.baseURL.absoluteString, apiKeys: [Redacted("sk-ant-test-key")],
                  timeouts: .init(idle: .seconds(2))),
        ])
        let prices = try PriceTable(logger: h.logger)
        let registry = ProviderRegistry(configuration: configuration, httpClient: http, priceTable: prices, logger: h.logger)
        try await h.client.register(providers: [
            RegisteredProvider(name: "openai", kind: .openai, models: ["gpt-4o-mini"]),
            RegisteredProvider(name: "anthropic", kind: .anthropic, models: ["claude-sonnet-4-5"]),
        ])
        return Setup(h: h, mock: mock, http: http, registry: registry)
    }

    func worker(_ s: Setup) throws -> Worker {
        let registry = s.registry
        return try Worker(configuration: WorkerHarness.testConfiguration(), postgres: s.h.postgres,
                          providers: { registry.provider(named: $0) }, logger: s.h.logger)
    }

    @Test func openAIAndAnthropicJobsSucceedWithUsageAndCost() async throws {
        let s = try await setUp()
        let openAI = try await s.h.client.enqueue(JobSpec(
            tenant: "acme", provider: "openai", model: "gpt-4o-mini", request: chat("alpha beta gamma [[mock: tokens=6]]"))).id
        let anthropic = try await s.h.client.enqueue(JobSpec(
            tenant: "acme", provider: "anthropic", model: "claude-sonnet-4-5", request: chat("one two [[mock: tokens=4, cached=3]]"),
            maxOutputTokens: 50)).id
        let jobs = try await s.h.withWorkers([try worker(s)]) {
            [try await s.h.client.wait(for: openAI, timeout: .seconds(30)), try await s.h.client.wait(for: anthropic, timeout: .seconds(30))]
        }
        #expect(jobs.map(\.state) == [.succeeded, .succeeded])
        let o = try #require(try await s.h.client.result(openAI))
        #expect(o.outputText == MockProviderOutput.text(forPrompt: "alpha beta gamma", tokens: 6))
        #expect(o.usage.outputTokens == 6)
        #expect(o.timeToFirstTokenMilliseconds != nil)
        #expect((o.costUSD ?? 0) > 0)
        let a = try #require(try await s.h.client.result(anthropic))
        #expect(a.usage.outputTokens == 4)
        #expect(a.usage.cacheReadTokens == 3)
        #expect((a.costUSD ?? 0) > 0)
    }

    /// A job's cost counts every attempt that spent tokens: an Anthropic stream cut after its
    /// first chunks (input usage already reported) is paid for, then the retry succeeds.
    @Test func jobCostIsTheSumOverItsAttempts() async throws {
        let s = try await setUp()
        let id = try await s.h.client.enqueue(JobSpec(
            tenant: "acme", provider: "anthropic", model: "claude-sonnet-4-5",
            request: chat("a prompt long enough to cost something [[mock: disconnect_after=2, fail_times=1, tokens=8]]"),
            maxOutputTokens: 50, maxAttempts: 3)).id
        let job = try await s.h.withWorkers([try worker(s)]) { try await s.h.client.wait(for: id, timeout: .seconds(30)) }
        #expect(job.state == .succeeded)
        #expect(job.attempt == 2)
        let costs = try await s.h.postgres.query(
            "SELECT coalesce(cost_usd, 0)::float8 FROM sluice.attempts WHERE job_id = $1 ORDER BY attempt", [id])
            .rows.map { try $0.decode(Double.self, at: 0) }
        #expect(costs.count == 2)
        #expect(costs[0] > 0, "the cut attempt reported input usage and is costed")
        let result = try #require(try await s.h.client.result(id))
        #expect(abs((result.costUSD ?? 0) - (costs[0] + costs[1])) < 1e-9)
    }

    @Test func overloadedThenSuccessAndCutStreamsNeverSucceed() async throws {
        let s = try await setUp()
        let retried = try await s.h.client.enqueue(JobSpec(
            tenant: "acme", provider: "anthropic", model: "claude-sonnet-4-5",
            request: chat("retry me [[mock: status=529, fail_times=1, retry_after_ms=100]]"), maxOutputTokens: 20)).id
        let cut = try await s.h.client.enqueue(JobSpec(
            tenant: "acme", provider: "openai", model: "gpt-4o-mini",
            request: chat("cut me [[mock: disconnect_after=2, tokens=8]]"), maxAttempts: 2)).id
        let auth = try await s.h.client.enqueue(JobSpec(
            tenant: "acme", provider: "openai", model: "gpt-4o-mini", request: chat("nope [[mock: status=401]]"))).id
        let jobs = try await s.h.withWorkers([try worker(s)]) {
            [try await s.h.client.wait(for: retried, timeout: .seconds(30)), try await s.h.client.wait(for: cut, timeout: .seconds(30)),
             try await s.h.client.wait(for: auth, timeout: .seconds(30))]
        }
        #expect(jobs[0].state == .succeeded)
        #expect(jobs[0].attempt == 2)
        #expect(jobs[1].state == .dead)
        #expect(jobs[1].lastErrorClass == "connection")
        #expect(try await s.h.client.result(cut) == nil)
        #expect(jobs[2].state == .dead)
        #expect(jobs[2].lastErrorClass == "auth")
        #expect(jobs[2].attempt == 1)
        // Keys never reach rows.
        let leaked = try await s.h.count("""
            SELECT count(*) FROM sluice.attempts WHERE error_message LIKE '%sk-test%' OR error_message LIKE '%sk-ant%'
            """)
        #expect(leaked == 0)
    }
}
