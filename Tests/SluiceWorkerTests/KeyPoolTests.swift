import Foundation
import Logging
import Sluice
import SluiceHTTP
import SluiceMockProvider
import SluicePostgres
@testable import SluiceProviders
import SluiceRedis
import SluiceSupport
import SluiceTestScope
import SluiceTestSupport
import SluiceWorker
import Testing

/// API-key pools: per-key buckets in the admission script (real Redis), the key each call
/// uses, and a worker with a pool against the mock provider (which limits per API key).
@Suite("API-key pools", .workerDatabase)
struct KeyPoolTests {
    static func pool(_ limiter: RateLimiter, _ id: String, rpm: Double) -> RateLimiter.PoolKey {
        RateLimiter.PoolKey(id: id, cooldown: limiter.key("cool", "p/m", id),
                            buckets: [LimiterTests.bucket(limiter, "m:p/m:\(id):rpm", perMinute: rpm, amount: 1)])
    }

    /// The script takes the key with the most room, all or nothing with the shared buckets,
    /// skips keys in a cooldown, waits when every key is short, and settles the key it took.
    @Test func admissionTakesTheKeyWithTheMostRoom() async throws {
        let limiter = try LimiterTests.limiter()
        let keys = [Self.pool(limiter, "a", rpm: 2), Self.pool(limiter, "b", rpm: 4)]
        func start(_ id: String, shared: [RateLimiter.Bucket] = []) async throws -> RateLimiter.Decision {
            var request = LimiterTests.request(id, shared)
            request.pool = keys
            return try await limiter.admit(request)
        }
        // b (4) has more room than a (2) until both have one left per minute of... a: 2, b: 4 →
        // b, b (3/4 then 2/4 left vs a's 1/2 … ties go to the first), then a, then the rest.
        var taken: [Int] = []
        for i in 0..<6 {
            guard case .admitted(_, _, _, let key?) = try await start("s\(i)") else {
                Issue.record("start \(i) was not admitted")
                return
            }
            taken.append(key)
        }
        #expect(taken.filter { $0 == 0 }.count == 2)
        #expect(taken.filter { $0 == 1 }.count == 4)
        #expect(taken.first == 1)
        // Every key is empty: the wait is the soonest key's refill (a: 30 s per request at 2/min).
        guard case .pool(let wait) = try await start("s6") else {
            Issue.record("expected a pool wait")
            return
        }
        #expect(wait > .seconds(10) && wait <= .seconds(30))
        // A repeated admission of the same attempt takes nothing and names the same key.
        #expect(try await start("s5") == .admitted(budgetsUsed: [], poolKey: taken[5]))
        // Settling a failed call refunds its key.
        var settled = LimiterTests.request("s5", [])
        settled.buckets = keys[taken[5]].buckets
        #expect(try await limiter.settle(settled, usage: .nothing))
        guard case .admitted(_, _, _, let refunded?) = try await start("s7") else {
            Issue.record("the refunded key was not taken")
            return
        }
        #expect(refunded == taken[5])

        // A key in a cooldown is skipped; a shared bucket that is short refuses every key.
        let fresh = [Self.pool(limiter, "c", rpm: 100), Self.pool(limiter, "d", rpm: 10)]
        try await limiter.cooldown(fresh[0].cooldown, for: .seconds(30))
        var request = LimiterTests.request("c1", [])
        request.pool = fresh
        let firstTake = ContinuousClock.now
        #expect(try await limiter.admit(request) == .admitted(budgetsUsed: [], poolKey: 1))
        let empty = LimiterTests.bucket(limiter, "m:p/m:shared", perMinute: 1, amount: 1)
        var blocked = LimiterTests.request("c2", [empty])
        blocked.pool = fresh
        #expect(try await limiter.admit(blocked) == .admitted(budgetsUsed: [], poolKey: 1))
        blocked.reservation = "c3"
        guard case .bucket = try await limiter.admit(blocked) else {
            Issue.record("a short shared bucket must refuse")
            return
        }
        let level = try await limiter.level(of: fresh[1].buckets[0].key, capacity: 10, refillPerMillisecond: 10.0 / 60_000)
        // Two starts took from key d (10 a minute): 8 left plus what refilled since, at most
        // `refilled`. Had the refused start taken one too, at most 7 + refilled would be left.
        // (Bounded by the time measured, not a fixed margin: under load this test can take
        // seconds, and 10 a minute refills 0.17 a second; the bucket holds at most 10.)
        let elapsed = ContinuousClock.now - firstTake
        let refilled = (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * 10 / 60
        #expect(level > min(7.5 + refilled, 9.5), "the refused start took nothing from the key (level \(level), refilled ≤ \(refilled))")
    }

    /// The provider calls with the key admission chose, by id; an unknown id fails without a
    /// call, and never shows a secret.
    @Test func providerUsesTheChosenKey() async throws {
        let h = try WorkerHarness.current
        let configuration = try ProvidersConfiguration.parse(yaml: """
            providers:
              - name: pool
                kind: openai
                base_url: http://127.0.0.1:9/v1
                api_keys: [{id: team-a, key: sk-aaaaaaaaaaaaaaaaaaaa}, {id: team-b, env: POOL_KEY_B}]
            """, environment: ["POOL_KEY_B": "sk-bbbbbbbbbbbbbbbbbbbb"])
        let entry = try #require(configuration.provider(named: "pool"))
        #expect(entry.apiKeyIDs == ["team-a", "team-b"])
        let http = HTTPClient(logger: h.logger)
        try TestScope.required(for: "an HTTP client").onExit("HTTP client") { await http.shutdown() }
        let provider = OpenAIProvider(configuration: entry, httpClient: http, priceTable: nil, logger: h.logger)
        let call = ProviderCall(jobID: UUID(), tenant: "acme", provider: "pool", model: "gpt-4o", request: Array(#"{"messages":[]}"#.utf8),
                                keyID: "team-b")
        let request = try provider.makeRequest(call)
        #expect(request.headers["Authorization"] == "Bearer sk-bbbbbbbbbbbbbbbbbbbb")
        var unknown = call
        unknown.keyID = "team-z"
        let error = #expect(throws: ProviderFailure.self) { try provider.makeRequest(unknown) }
        #expect(error?.message.contains("team-z") == true)
        #expect(error?.message.contains("sk-") == false)
        for bad in ["api_keys: [{id: Bad, key: k}]", "api_keys: [{id: a, key: k}, {id: a, key: l}]", "api_keys: [{id: a}]"] {
            let refused = #expect(throws: ProvidersError.self) {
                try ProvidersConfiguration.parse(yaml: "providers:\n  - {name: p, kind: openai, \(bad)}")
            }
            #expect(refused?.field?.hasPrefix("providers[0].api_keys") == true, "\(bad): \(refused?.field ?? "nil")")
        }
    }

    /// Key pools from the configuration file (`limits.models.P/M.keys`), as `sluice limits set
    /// --key-id` makes them: admission takes a key of the pool, spreads starts over the keys by
    /// their room, and a row in PostgreSQL for one key replaces the file's figure for that key.
    @Test func keyPoolFromTheConfigurationFile() async throws {
        let h = try WorkerHarness.current
        let configuration = try ProvidersConfiguration.parse(yaml: """
            providers:
              - {name: echo, kind: echo, api_keys: [{id: team-a, key: sk-aaaaaaaaaaaaaaaaaaaa}, {id: team-b, key: sk-bbbbbbbbbbbbbbbbbbbb}]}
            limits:
              models:
                echo/echo: {keys: {team-a: {rpm: 2}, team-b: {rpm: 3, tpm: 100000}}}
            """)
        let pool = configuration.modelLimits.filter { $0.keyID != nil }.sorted { ($0.keyID ?? "") < ($1.keyID ?? "") }
        #expect(pool == [ModelLimits(provider: "echo", model: "echo", rpm: 2, keyID: "team-a"),
                         ModelLimits(provider: "echo", model: "echo", rpm: 3, tpm: 100_000, keyID: "team-b")])
        let admission = try AdmissionTests.admission(h) { $0.fileLimits = configuration.modelLimits }
        let jobs = try await LeasingTests.claimed(h, 6)
        var keys: [String] = []
        for job in jobs {
            if case .start(let ticket) = await admission.admit(job) { keys.append(ticket?.keyID ?? "none") }
        }
        // Five fit (2 + 3), each on a key of the pool, never more than a key allows.
        #expect(keys.count == 5, "\(keys)")
        #expect(keys.filter { $0 == "team-a" }.count == 2 && keys.filter { $0 == "team-b" }.count == 3, "\(keys)")
        // PostgreSQL overrides the file per key: team-a raised, team-b as in the file.
        var snapshot = LimitsSnapshot(models: [ModelLimits(provider: "echo", model: "echo", rpm: 50, keyID: "team-a")])
        snapshot.addFileLimits(configuration.modelLimits)
        #expect(snapshot.models.filter { $0.keyID == "team-a" }.map(\.rpm) == [50])
        #expect(snapshot.models.filter { $0.keyID == "team-b" }.map(\.rpm) == [3])
        for (yaml, field) in [
            ("echo/echo: {keys: {Team: {rpm: 1}}}", "limits.models.echo/echo.keys.Team"),
            ("echo/echo: {keys: {team-z: {rpm: 1}}}", "limits.models.echo/echo.keys.team-z"),
            ("echo/echo: {keys: {team-a: {rpm: 0}}}", "limits.models.echo/echo.keys.team-a.rpm"),
            ("echo/echo: {keys: {team-a: {paused: true}}}", "limits.models.echo/echo.keys.team-a.paused"),
            ("echo/echo: {keys: {team-a: {}}}", "limits.models.echo/echo.keys.team-a"),
            ("echo/echo: {keys: [team-a]}", "limits.models.echo/echo.keys"),
        ] {
            let refused = #expect(throws: ProvidersError.self, "\(yaml)") {
                try ProvidersConfiguration.parse(yaml: """
                    providers:
                      - {name: echo, kind: echo, api_keys: [{id: team-a, key: sk-aaaaaaaaaaaaaaaaaaaa}]}
                    limits:
                      models:
                        \(yaml)
                    """)
            }
            #expect(refused?.field == field, "\(yaml): \(refused?.field ?? "nil")")
        }
    }

    /// A worker with a pool of two keys against the mock, which allows one request per minute
    /// per API key: the two jobs start at once on different keys (no 429), the third waits for
    /// a key without using an attempt; a 429 on one key would cool down only that key.
    /// The pool's limits come from `sluice limits set --key-id` (the database) or from the
    /// configuration file's `limits.models.P/M.keys` (``AdmissionConfiguration/fileLimits``).
    @Test(arguments: [false, true])
    func workerSpreadsCallsOverThePoolWithoutA429(limitsFromFile: Bool) async throws {
        let h = try WorkerHarness.current
        let scope = try TestScope.required(for: "the mock provider")
        let mock = try await MockProviderServer.start(configuration: .init(port: 0, rpm: 1), logger: h.logger)
        scope.onExit("mock provider") { await mock.stop() }
        let http = HTTPClient(logger: h.logger)
        scope.onExit("HTTP client") { await http.shutdown() }
        var entry = ProvidersConfiguration.Provider(name: "openai", kind: .openai, baseURL: mock.openAIBaseURL.absoluteString,
                                                    apiKeys: [Redacted("sk-pool-key-aaaaaaaaaaaa"), Redacted("sk-pool-key-bbbbbbbbbbbb")])
        entry.apiKeyIDs = ["team-a", "team-b"]
        let registry = ProviderRegistry(configuration: ProvidersConfiguration(providers: [entry]), httpClient: http,
                                        priceTable: try PriceTable(logger: h.logger), logger: h.logger)
        try await h.client.register(providers: [RegisteredProvider(name: "openai", kind: .openai, models: ["gpt-4o-mini"])])
        let store = JobStore(postgres: h.postgres)
        var fileLimits: [ModelLimits] = []
        if limitsFromFile {
            fileLimits = try ProvidersConfiguration.parse(yaml: """
                providers:
                  - {name: openai, kind: openai, api_keys: [{id: team-a, key: sk-pool-key-aaaaaaaaaaaa}, {id: team-b, key: sk-pool-key-bbbbbbbbbbbb}]}
                limits:
                  models:
                    openai/gpt-4o-mini: {keys: {team-a: {rpm: 1}, team-b: {rpm: 1}}}
                """).modelLimits
        } else {
            _ = try await store.setModelLimits(provider: "openai", model: "gpt-4o-mini", rpm: 1, keyID: "team-a")
            _ = try await store.setModelLimits(provider: "openai", model: "gpt-4o-mini", rpm: 1, keyID: "team-b")
        }
        let admission = try AdmissionTests.admission(h) { $0.fileLimits = fileLimits }
        let worker = try Worker(configuration: WorkerHarness.testConfiguration(), postgres: h.postgres,
                                providers: { registry.provider(named: $0) }, logger: h.logger, admission: admission)
        let ids = try await h.client.enqueue(batch: (0..<3).map {
            JobSpec(tenant: "acme", lane: .high, provider: "openai", model: "gpt-4o-mini", request: chat("pool \($0)"))
        }).map(\.id)
        try await h.withWorkers([worker]) {
            try await AdmissionTests.eventually("two jobs succeed, the third waits for a key") {
                let done = try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'succeeded'")
                let waiting = try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'queued' AND wait_reason LIKE '%every API key%'")
                return done == 2 && waiting == 1
            }
        }
        let stats = mock.stats
        #expect(stats.rateLimited == 0)
        #expect(stats.requestsByStatus["200"] == 2)
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND attempt <> 0 AND state = 'queued'", [ids]) == 0)
        let snapshot = limitsFromFile ? await admission.limits() : try await store.limitsSnapshot()
        #expect(Set(snapshot.models.compactMap(\.keyID)) == ["team-a", "team-b"])
    }
}
