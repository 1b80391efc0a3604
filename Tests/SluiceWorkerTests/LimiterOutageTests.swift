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
    /// A `redis-server` of the test's own on a free port (killed with SIGKILL to simulate a
    /// crash, started again on the same port).
    final class RedisServer: Sendable {
        let port: Int
        private let process = Mutex<ChildProcess?>(nil)

        init() throws {
            let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(probe) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var bound = address
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, length) } }
            _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &length) } }
            port = Int(UInt16(bigEndian: bound.sin_port))
        }

        var url: String { "redis://127.0.0.1:\(port)" }

        func start(logger: Logger) async throws {
            let child = try ChildProcess.spawn("/usr/bin/redis-server", [
                "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
            ])
            process.withLock { $0 = child }
            let probe = RedisClient(configuration: try RedisConfiguration(url: url), logger: logger)
            defer { Task { await probe.shutdown() } }
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if (try? await probe.command(["PING"])) != nil { return }
                try await Task.sleep(for: .milliseconds(50))
            }
            Issue.record("redis-server on port \(port) did not start")
        }

        func kill() async {
            guard let child = process.withLock({ p in defer { p = nil }; return p }) else { return }
            child.send(SIGKILL)
            _ = await child.waitForExit(timeout: .seconds(10))
        }
    }

    @Test func redisDownMeansNoStartsAndNothingLost() async throws {
        let h = try WorkerHarness.current
        let server = try RedisServer()
        try await server.start(logger: h.logger)
        let scope = try TestScope.required(for: "a redis-server")
        scope.onExit("redis-server") { await server.kill() }
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
            await server.kill()
            let later = try await h.client.enqueue(batch: (0..<6).map { echo("acme", "later \($0)") }).map(\.id)
            for id in inFlight { #expect(try await h.client.wait(for: id, timeout: .seconds(20)).state == .succeeded) }
            try await AdmissionTests.eventually("settlements wait for Redis") { admission.unsettledCount == 4 }
            // Down for 2 s: nothing that needs a bucket starts.
            try await Task.sleep(for: .seconds(2))
            #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state <> 'queued'", [later]) == 0)
            #expect(try await h.count("SELECT count(*) FROM sluice.attempts WHERE job_id = ANY($1)", [later]) == 0)
            // Back: claims resume by themselves, kept settlements are applied once.
            try await server.start(logger: h.logger)
            for id in later { #expect(try await h.client.wait(for: id, timeout: .seconds(30)).state == .succeeded) }
            try await AdmissionTests.eventually("kept settlements applied") { admission.unsettledCount == 0 }
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.results") == 10)
        #expect(try await h.count("SELECT count(*) FROM sluice.attempts") == 10)
    }
}
