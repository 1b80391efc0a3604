import Foundation
import Logging
import Sluice
import SluicePostgres
import SluiceProviders
import SluiceRedis
import SluiceTestScope
import SluiceTestSupport
import SluiceWorker
import Synchronization
import Testing

/// Redis stopped and restarted under a running worker: fail closed (no start that needs a
/// bucket while it is down), settlements of calls in flight kept and applied when it is back,
/// claims resume by themselves, every job ends with exactly one result.
@Suite("Limiter when Redis fails", .workerDatabase)
struct LimiterOutageTests {
    @Test func redisDownMeansNoStartsAndNothingLost() async throws {
        let h = try WorkerHarness.current
        // A redis-server of the test's own (SIGKILLed to simulate a crash, started again on the same port).
        let server = try RedisServerProcess()
        try await server.start()
        let scope = try TestScope.required(for: "a Redis client")
        let redis = RedisClient(configuration: try RedisConfiguration(url: server.url), pool: .init(acquireTimeout: .seconds(1)), logger: h.logger)
        scope.onExit("Redis client") { await redis.shutdown() }
        var configuration = AdmissionConfiguration()
        configuration.unavailableRetry = .milliseconds(200)
        // Every start decided in Redis (a reservation each, counted below). With leasing a
        // worker also starts jobs from capacity it took before Redis died, for at most one lease
        // duration; leases are dropped at the first failure.
        configuration.leasing.enabled = false
        let prices = try PriceTable(logger: h.logger)
        let admission = try Admission(configuration: configuration, limiter: RateLimiter(redis: redis), store: JobStore(postgres: h.postgres),
                                      cost: { p, m, u in prices.cost(providers: [p], model: m, usage: u) }, logger: h.logger)
        // A limit that never binds: every start takes from the bucket, so every start needs Redis.
        _ = try await JobStore(postgres: h.postgres).setModelLimits(provider: "echo", model: "echo", rpm: 100_000, tpm: 10_000_000)
        try await h.withWorkers([try AdmissionTests.worker(h, admission)]) {
            // Calls in flight when Redis dies: their settlements must wait for it.
            let inFlight = try await h.client.enqueue(batch: (0..<4).map { _ in echo("acme", "slow", metadata: #"{"echo_delay_ms":1500}"#) }).map(\.id)
            // Admitted (a reservation each in this private Redis), not merely claimed.
            try await AdmissionTests.eventually("four calls run") {
                (try await redis.command(["KEYS", "{sluice}:res:*"]).array?.count ?? 0) == 4
            }
            await server.stop()
            let later = try await h.client.enqueue(batch: (0..<6).map { echo("acme", "later \($0)") }).map(\.id)
            for id in inFlight { #expect(try await h.client.wait(for: id, timeout: .seconds(20)).state == .succeeded) }
            try await AdmissionTests.eventually("settlements wait for Redis") { admission.unsettledCount == 4 }
            // Down for 2 s: nothing that needs a bucket starts.
            try await Task.sleep(for: .seconds(2))
            #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state <> 'queued'", [later]) == 0)
            #expect(try await h.count("SELECT count(*) FROM sluice.attempts WHERE job_id = ANY($1)", [later]) == 0)
            // Back: claims resume by themselves, kept settlements are applied once.
            try await server.start()
            for id in later { #expect(try await h.client.wait(for: id, timeout: .seconds(30)).state == .succeeded) }
            try await AdmissionTests.eventually("kept settlements applied") { admission.unsettledCount == 0 }
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.results") == 10)
        #expect(try await h.count("SELECT count(*) FROM sluice.attempts") == 10)
    }
}
