import Foundation
import Logging
import Sluice
import SluiceHTTP
import SluiceMockProvider
import SluicePostgres
import SluiceProviders
import SluiceRedis
import SluiceSupport
import SluiceTestScope
import SluiceTestSupport
import SluiceWorker
import Testing

/// Fallback routes end to end: in-process workers, the mock provider over real HTTP (OpenAI and
/// Anthropic wire formats), real PostgreSQL and, for admission, real Redis. Each failing target
/// is a provider entry pointing at the mock with an `x-mock` header that makes every call fail
/// the way the test needs.
@Suite("Fallback routes", .workerDatabase)
struct RouteTests {
    struct Setup {
        let h: WorkerHarness
        let registry: ProviderRegistry
        var store: JobStore { JobStore(postgres: h.postgres) }
    }

    func setUp() async throws -> Setup {
        let h = try WorkerHarness.current
        let scope = try TestScope.required(for: "the mock provider")
        let mock = try await MockProviderServer.start(configuration: .init(port: 0), logger: h.logger)
        scope.onExit("mock provider") { await mock.stop() }
        let http = HTTPClient(logger: h.logger)
        scope.onExit("HTTP client") { await http.shutdown() }
        let openAI = mock.openAIBaseURL.absoluteString, anthropic = mock.baseURL.absoluteString
        func provider(_ name: String, _ kind: ProviderKind, failing directive: String? = nil) -> ProvidersConfiguration.Provider {
            .init(name: name, kind: kind, baseURL: kind == .openai ? openAI : anthropic,
                  apiKeys: [Redacted(kind == .openai ? "sk-test-openai-key" : "sk-ant-test-key")],
                  headers: directive.map { ["x-mock": $0] } ?? [:], timeouts: .init(idle: .seconds(5)))
        }
        let configuration = ProvidersConfiguration(providers: [
            .init(name: "echo", kind: .echo),
            provider("openai", .openai), provider("anthropic", .anthropic),
            provider("openai-500", .openai, failing: "status=500"),
            provider("openai-429", .openai, failing: "status=429"),
            provider("anthropic-529", .anthropic, failing: "status=529"),
            provider("openai-ctx", .openai, failing: "status=400,context=1"),
            provider("openai-bad", .openai, failing: "status=400"),
            provider("anthropic-401", .anthropic, failing: "status=401"),
        ])
        let prices = try PriceTable(logger: h.logger)
        let registry = ProviderRegistry(configuration: configuration, httpClient: http, priceTable: prices, logger: h.logger)
        try await h.client.register(providers: [
            RegisteredProvider(name: "openai", kind: .openai, models: ["gpt-4o-mini", "gpt-4o", "gpt-4.1"]),
            RegisteredProvider(name: "anthropic", kind: .anthropic, models: ["claude-sonnet-4-5"]),
            RegisteredProvider(name: "openai-500", kind: .openai, models: ["gpt-4o-mini"]),
            RegisteredProvider(name: "openai-429", kind: .openai, models: ["gpt-4o-mini"]),
            RegisteredProvider(name: "anthropic-529", kind: .anthropic, models: ["claude-sonnet-4-5"]),
            RegisteredProvider(name: "openai-ctx", kind: .openai, models: ["gpt-4o"]),
            RegisteredProvider(name: "openai-bad", kind: .openai, models: ["gpt-4o-mini"]),
            RegisteredProvider(name: "anthropic-401", kind: .anthropic, models: ["claude-sonnet-4-5"]),
        ])
        return Setup(h: h, registry: registry)
    }

    func worker(_ s: Setup, admission: Admission? = nil) throws -> Worker {
        let registry = s.registry
        return try Worker(configuration: WorkerHarness.testConfiguration(), postgres: s.h.postgres,
                          providers: { registry.provider(named: $0) }, logger: s.h.logger, admission: admission)
    }

    func route(_ s: Setup, _ name: String, _ targets: String...) async throws {
        try await s.store.setRoute(Route(name: name, targets: targets.compactMap(RouteTarget.init(parsing:))))
    }

    struct AttemptRow: Equatable {
        var target: String
        var errorClass: String?
        var fallback: String?
        var skipped: String?
    }

    func attempts(_ s: Setup, _ id: UUID) async throws -> [AttemptRow] {
        try await s.h.postgres.query("""
            SELECT provider || '/' || model, error_class, fallback, skipped::text FROM sluice.attempts WHERE job_id = $1 ORDER BY attempt
            """, [id]).rows.map {
            AttemptRow(target: try $0.decode(String.self, at: 0), errorClass: try $0.decode(String?.self, at: 1),
                       fallback: try $0.decode(String?.self, at: 2), skipped: try $0.decode(String?.self, at: 3))
        }
    }

    /// An OpenAI-shaped request with a system message and stop sequences: translated for
    /// Anthropic targets (the mock refuses a system role or `stop` in an Anthropic body).
    static func openAIRequest(_ text: String) -> JSONDocument {
        JSONDocument(#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"\#(text)"}],"stop":["zzz"],"temperature":1.5,"max_tokens":40}"#)
    }

    @Test func serverErrorRateLimitAndOverloadMoveOnAndTheResultNamesTheTargetUsed() async throws {
        let s = try await setUp()
        try await route(s, "chain", "openai-500/gpt-4o-mini", "openai-429/gpt-4o-mini", "anthropic-529/claude-sonnet-4-5",
                        "anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini")
        let id = try await s.h.client.enqueue(JobSpec(tenant: "acme", target: .route("chain"),
                                                      request: Self.openAIRequest("alpha beta gamma"))).id
        let job = try await s.h.withWorkers([try worker(s)]) { try await s.h.client.wait(for: id, timeout: .seconds(60)) }
        #expect(job.state == .succeeded)
        #expect(job.attempt == 4)
        #expect(job.route == "chain")
        let result = try #require(try await s.h.client.result(id))
        #expect(result.provider == "anthropic")
        #expect(result.model.hasPrefix("claude-sonnet-4-5"))
        #expect(result.outputText?.contains("alpha") == true)
        let rows = try await attempts(s, id)
        #expect(rows.map(\.target) == ["openai-500/gpt-4o-mini", "openai-429/gpt-4o-mini", "anthropic-529/claude-sonnet-4-5",
                                       "anthropic/claude-sonnet-4-5"])
        #expect(rows.map(\.errorClass) == ["server_error", "rate_limited", "overloaded", nil])
        #expect(rows[0].fallback == "server_error: moved on to openai-429/gpt-4o-mini")
        #expect(rows[1].fallback == "rate_limited: moved on to anthropic-529/claude-sonnet-4-5")
        #expect(rows[2].fallback == "overloaded: moved on to anthropic/claude-sonnet-4-5")
        #expect(rows[3].fallback == nil)
    }

    @Test func contextLengthMovesOnlyToALargerContextWindow() async throws {
        let s = try await setUp()
        // gpt-4o (128k) is too small; gpt-4o-mini has the same window and is skipped; Claude
        // (200k) is larger. The request is OpenAI-shaped; Claude gets it translated.
        try await route(s, "long", "openai-ctx/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5")
        let id = try await s.h.client.enqueue(JobSpec(tenant: "acme", target: .route("long"),
                                                      request: Self.openAIRequest("delta epsilon"))).id
        let job = try await s.h.withWorkers([try worker(s)]) { try await s.h.client.wait(for: id, timeout: .seconds(60)) }
        #expect(job.state == .succeeded)
        #expect(job.attempt == 2)
        #expect(job.routeContextFloor == 128_000)
        #expect(try #require(try await s.h.client.result(id)).provider == "anthropic")
        let rows = try await attempts(s, id)
        #expect(rows.map(\.target) == ["openai-ctx/gpt-4o", "anthropic/claude-sonnet-4-5"])
        #expect(rows[0].errorClass == "context_length")
        #expect(rows[0].fallback == "context_length: moved on to anthropic/claude-sonnet-4-5")
    }

    @Test func contextLengthWithoutALargerTargetIsDead() async throws {
        let s = try await setUp()
        try await route(s, "small", "openai-ctx/gpt-4o", "openai/gpt-4o-mini")
        let id = try await s.h.client.enqueue(JobSpec(tenant: "acme", target: .route("small"), request: chat("too long"))).id
        let job = try await s.h.withWorkers([try worker(s)]) { try await s.h.client.wait(for: id, timeout: .seconds(60)) }
        #expect(job.state == .dead)
        #expect(job.attempt == 1)
        #expect(job.lastErrorClass == "context_length")
        let reason = try await s.h.postgres.query("SELECT reason FROM sluice.dead_letters WHERE job_id = $1", [id]).rows[0]
            .decode(String.self, at: 0)
        #expect(reason.contains("no further target in route small"), "\(reason)")
    }

    @Test func invalidRequestAndAuthDoNotFallBack() async throws {
        let s = try await setUp()
        try await route(s, "bad", "openai-bad/gpt-4o-mini", "openai/gpt-4o-mini")
        try await route(s, "unauthorised", "anthropic-401/claude-sonnet-4-5", "openai/gpt-4o-mini")
        let bad = try await s.h.client.enqueue(JobSpec(tenant: "acme", target: .route("bad"), request: chat("x"))).id
        let auth = try await s.h.client.enqueue(JobSpec(tenant: "acme", target: .route("unauthorised"), request: chat("y"))).id
        let jobs = try await s.h.withWorkers([try worker(s)]) {
            [try await s.h.client.wait(for: bad, timeout: .seconds(60)), try await s.h.client.wait(for: auth, timeout: .seconds(60))]
        }
        #expect(jobs.map(\.state) == [.dead, .dead])
        #expect(jobs.map(\.lastErrorClass) == ["invalid_request", "auth"])
        #expect(jobs.map(\.attempt) == [1, 1])
        #expect(try await attempts(s, bad) == [AttemptRow(target: "openai-bad/gpt-4o-mini", errorClass: "invalid_request")])
        #expect(try await attempts(s, auth) == [AttemptRow(target: "anthropic-401/claude-sonnet-4-5", errorClass: "auth")])
        #expect(try await s.h.count("SELECT count(*) FROM sluice.results") == 0)
    }

    /// An Anthropic-shaped request (system field, stop_sequences, a tool) on an OpenAI target:
    /// translated (the mock refuses `system` and `stop_sequences` in an OpenAI body).
    @Test func anthropicShapedRequestRunsOnAnOpenAITarget() async throws {
        let s = try await setUp()
        try await route(s, "cross", "anthropic-529/claude-sonnet-4-5", "openai/gpt-4.1")
        let request = JSONDocument(#"""
            {"system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"zeta eta [[mock: tools=1]]"}]}],
             "stop_sequences":["zzz"],"max_tokens":30,
             "tools":[{"name":"lookup","description":"find","input_schema":{"type":"object","properties":{"q":{"type":"string"}}}}],
             "tool_choice":{"type":"any"}}
            """#)
        let id = try await s.h.client.enqueue(JobSpec(tenant: "acme", target: .route("cross"), request: request)).id
        let job = try await s.h.withWorkers([try worker(s)]) { try await s.h.client.wait(for: id, timeout: .seconds(60)) }
        #expect(job.state == .succeeded, "\(job.lastError ?? "")")
        let result = try #require(try await s.h.client.result(id))
        #expect(result.provider == "openai")
        #expect(result.toolCalls.bytes.count > 2)
        #expect(try await attempts(s, id).map(\.target) == ["anthropic-529/claude-sonnet-4-5", "openai/gpt-4.1"])
    }

    /// Admission: an open circuit breaker, and a bucket wait longer than the job's timeout, pass
    /// a target over without an attempt; the attempt that ran records them in `skipped`.
    @Test func breakerOpenAndLongBucketWaitPassTargetsOver() async throws {
        let s = try await setUp()
        let prefix = "test-" + UUID().uuidString.lowercased()
        let admission = try AdmissionTests.admission(s.h) { $0.keyPrefix = prefix }
        let url = try #require(ProcessInfo.processInfo.environment["SLUICE_TEST_REDIS_URL"])
        let redis = RedisClient(configuration: try RedisConfiguration(url: url), logger: s.h.logger)
        try TestScope.required(for: "a Redis client").onExit("Redis client") { await redis.shutdown() }
        let limiter = RateLimiter(redis: redis, prefix: prefix)
        for _ in 0..<5 {
            try await limiter.recordBreaker(limiter.key("brk", "anthropic/claude-sonnet-4-5"), success: false, policy: .init())
        }
        // One request per minute on gpt-4.1: the second job would wait ~60 s, longer than its
        // 5 s timeout, so it moves on to gpt-4o-mini.
        _ = try await s.store.setModelLimits(provider: "openai", model: "gpt-4.1", rpm: 1)
        try await route(s, "guarded", "anthropic/claude-sonnet-4-5", "openai/gpt-4.1", "openai/gpt-4o-mini")
        let ids = try await s.h.client.enqueue(batch: (0..<2).map {
            JobSpec(tenant: "acme", lane: .high, target: .route("guarded"), request: chat("job \($0)"), timeout: .seconds(5))
        }).map(\.id)
        let jobs = try await s.h.withWorkers([try worker(s, admission: admission)]) {
            try await ids.asyncMap { try await s.h.client.wait(for: $0, timeout: .seconds(60)) }
        }
        #expect(jobs.map(\.state) == [.succeeded, .succeeded])
        #expect(jobs.map(\.attempt) == [1, 1])
        var used: [String] = []
        for id in ids {
            let rows = try await attempts(s, id)
            #expect(rows.count == 1)
            used.append(rows[0].target)
            #expect(rows[0].skipped?.contains("circuit breaker open") == true, "\(rows[0].skipped ?? "nil")")
            if rows[0].target == "openai/gpt-4o-mini" {
                #expect(rows[0].skipped?.contains("longer than the job's timeout") == true, "\(rows[0].skipped ?? "nil")")
            }
        }
        #expect(used.sorted() == ["openai/gpt-4.1", "openai/gpt-4o-mini"])
    }

    /// Enqueue refuses an unknown route, and for a route that mixes the OpenAI and Anthropic
    /// formats a request with what is not translated, naming the field.
    @Test func enqueueRefusesUnknownRoutesAndUntranslatableRequests() async throws {
        let s = try await setUp()
        try await route(s, "mixed", "anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini")
        try await route(s, "openai-only", "openai/gpt-4o", "openai/gpt-4o-mini")
        func refusal(_ spec: JobSpec) async -> SluiceError? {
            do {
                _ = try await s.h.client.enqueue(spec)
                return nil
            } catch let error as SluiceError {
                return error
            } catch {
                return nil
            }
        }
        let unknown = await refusal(JobSpec(tenant: "acme", target: .route("nope"), request: chat("x")))
        #expect(unknown?.field == "route")
        #expect(unknown?.rule == "known")
        let toolHistory = JSONDocument(#"{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"r"}]}"#)
        let tools = await refusal(JobSpec(tenant: "acme", target: .route("mixed"), request: toolHistory))
        #expect(tools?.field == "request.messages")
        #expect(tools?.rule == "translatable")
        let extra = await refusal(JobSpec(tenant: "acme", target: .route("mixed"),
                                          request: JSONDocument(#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"#)))
        #expect(extra?.field == "request.response_format")
        #expect(extra?.rule == "translatable")
        let shape = await refusal(JobSpec(tenant: "acme", target: .route("mixed"), request: JSONDocument(#"{"messages":[{"role":"robot","content":"x"}]}"#)))
        #expect(shape?.field == "request.messages")
        // A route of one format takes what that format takes.
        #expect(await refusal(JobSpec(tenant: "acme", target: .route("openai-only"), request: toolHistory)) == nil)
        // Routes are checked by the store too.
        let unknownTarget = await #expect(throws: SluiceError.self) {
            try await s.store.setRoute(Route(name: "r", targets: [RouteTarget(provider: "openai", model: "gpt-9")]))
        }
        #expect(unknownTarget?.field == "targets[0]")
        #expect(unknownTarget?.rule == "known")
    }

    /// Soft budget with demotion: once the tenant's recorded spend reaches its soft limit, its
    /// jobs start in the configured lower lane and through the configured cheaper route, without
    /// using an attempt for the move.
    @Test func softBudgetDemotesToALowerLaneAndACheaperRoute() async throws {
        let h = try WorkerHarness.current
        let store = JobStore(postgres: h.postgres)
        try await store.setRoute(Route(name: "cheap", targets: [RouteTarget(provider: "echo", model: "echo")]))
        let ids = try await h.client.enqueue(batch: (0..<2).map { echo("acme", "demote \($0)", lane: .interactive) }).map(\.id)
        try await store.updateTenant("acme", [.softLane(.batch), .softRoute("cheap")])
        _ = try await h.postgres.query("UPDATE sluice.tenants SET daily_token_budget_soft = 100 WHERE id = 'acme'")
        _ = try await h.postgres.query("""
            INSERT INTO sluice.usage_daily (tenant, day, tokens, cost_usd, requests)
            VALUES ('acme', (now() AT TIME ZONE 'UTC')::date, 150, 0, 10)
            """)
        let refused = await #expect(throws: SluiceError.self) { try await store.updateTenant("acme", [.softRoute("nope")]) }
        #expect(refused?.field == "soft_route")
        let admission = try AdmissionTests.admission(h)
        let jobs = try await h.withWorkers([try AdmissionTests.worker(h, admission)]) {
            try await ids.asyncMap { try await h.client.wait(for: $0, timeout: .seconds(30)) }
        }
        #expect(jobs.map(\.state) == [.succeeded, .succeeded])
        #expect(jobs.map(\.lane) == [.batch, .batch])
        #expect(jobs.map(\.route) == ["cheap", "cheap"])
        #expect(jobs.map(\.attempt) == [1, 1])
        #expect(try await h.count("SELECT count(*) FROM sluice.attempts WHERE provider = 'echo' AND model = 'echo'") == 2)
    }

    /// A route changed or deleted after jobs were queued: the next start uses the new targets;
    /// a deleted route's jobs dead-letter naming it (and deleting it is refused while jobs name
    /// it, unless forced).
    @Test func routeChangesApplyOnTheNextStart() async throws {
        let s = try await setUp()
        try await route(s, "switch", "openai-bad/gpt-4o-mini")
        let first = try await s.h.client.enqueue(JobSpec(tenant: "acme", target: .route("switch"), request: chat("one"),
                                                         runAt: Date().addingTimeInterval(2))).id
        try await route(s, "switch", "openai/gpt-4o-mini")
        let gone = try await s.h.client.enqueue(JobSpec(tenant: "acme", target: .route("switch"), request: chat("two"),
                                                        runAt: Date().addingTimeInterval(3600))).id
        let refused = await #expect(throws: SluiceError.self) { try await s.store.deleteRoute("switch") }
        #expect(refused?.rule == "in_use")
        let job = try await s.h.withWorkers([try worker(s)]) { try await s.h.client.wait(for: first, timeout: .seconds(60)) }
        #expect(job.state == .succeeded)
        #expect(try await attempts(s, first).map(\.target) == ["openai/gpt-4o-mini"])
        #expect(try await s.store.deleteRoute("switch", force: true))
        _ = try await s.h.postgres.query("UPDATE sluice.jobs SET run_at = now() WHERE id = $1", [gone])
        let dead = try await s.h.withWorkers([try worker(s)]) { try await s.h.client.wait(for: gone, timeout: .seconds(60)) }
        #expect(dead.state == .dead)
        #expect(dead.lastError?.contains("route switch does not exist") == true)
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
