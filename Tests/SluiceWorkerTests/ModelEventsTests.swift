import Foundation
import Logging
import Sluice
import SluiceRedis
import SluiceTestScope
import SluiceTestSupport
import SluiceWorker
import Testing

/// The limiter's events channel (``RateLimiter/eventsChannel``) and the model gate: a 429 or a
/// breaker failure seen by one worker ends every other worker's cached model state and leases
/// within milliseconds — not when their lease would have ended (here 30 s, so only the event
/// can explain a prompt stop). Two ``Admission``s with their own Redis clients stand for two
/// worker processes.
@Suite("Model events: cached model state and leases across workers", .workerDatabase)
struct ModelEventsTests {
    /// An admission whose background duty (sweeps and the events subscription) runs until the
    /// test ends; returns once it is subscribed.
    static func running(_ h: WorkerHarness, prefix: String) async throws -> Admission {
        let admission = try AdmissionTests.admission(h) { c in
            c.keyPrefix = prefix
            c.leasing.duration = .seconds(30)
        }
        let task = Task { await admission.run() }
        try TestScope.required(for: "an admission's background duty").onExit("admission") { task.cancel() }
        try await AdmissionTests.eventually("subscribed to the limiter's events") { admission.subscribedToEvents }
        return admission
    }

    static func limit(_ verdict: Admission.Verdict) -> String? {
        if case .wait(_, let limit) = verdict { return limit }
        return nil
    }

    @Test func theModelGateSkipsRedisUntilAnEventClosesIt() async throws {
        let h = try WorkerHarness.current
        let prefix = "test-" + UUID().uuidString.lowercased()
        let admission = try await Self.running(h, prefix: prefix)
        let limiter = RateLimiter(redis: try LeasingTests.redis(h), prefix: prefix)
        let jobs = try await LeasingTests.claimed(h, 3)
        // A model without limits: the first start asks Redis whether the model is clear.
        guard case .start(nil) = await admission.admit(jobs[0]) else {
            Issue.record("the first job did not start")
            return
        }
        // A cooldown written behind the limiter's back (no event): the open gate does not ask
        // Redis again, so the next start goes ahead — the round trip is saved.
        _ = try await limiter.redis.command(["SET", limiter.key("cool", "echo/echo"), "1", "PX", "20000"])
        guard case .start(nil) = await admission.admit(jobs[1]) else {
            Issue.record("the gate asked Redis while it was open")
            return
        }
        // A longer cooldown as a worker's 429 writes it (announced; a cooldown is announced when
        // it is set or lengthened): the gate closes at once and the next start waits for it.
        try await limiter.cooldown(limiter.key("cool", "echo/echo"), for: .seconds(30), announce: "echo/echo")
        var last: Admission.Verdict?
        try await AdmissionTests.eventually("the next start waits for the cooldown", timeout: .seconds(10)) {
            last = await admission.admit(jobs[2])
            return Self.limit(last!) == "cooldown"
        }
        if Self.limit(last!) != "cooldown" { Issue.record("last verdict: \(String(describing: last)); subscribed \(admission.subscribedToEvents)") }
    }

    @Test func a429InOneWorkerEndsAnotherWorkersLeaseAtOnce() async throws {
        let h = try WorkerHarness.current
        _ = try await JobStore(postgres: h.postgres).setModelLimits(provider: "echo", model: "echo", rpm: 100_000, tpm: 100_000_000)
        let prefix = "test-" + UUID().uuidString.lowercased()
        let a = try await Self.running(h, prefix: prefix)
        let b = try await Self.running(h, prefix: prefix)
        let limiter = RateLimiter(redis: try LeasingTests.redis(h), prefix: prefix)
        let jobs = try await LeasingTests.claimed(h, 4)
        // B starts from a lease of 30 s.
        guard case .start(let leased) = await b.admit(jobs[0]), leased?.leased == true else {
            Issue.record("B's first start was not leased")
            return
        }
        #expect(b.leasedCapacity[limiter.key("rl", "m:echo/echo", "rpm")] != nil)
        // A's call is answered 429 with Retry-After 30 s.
        guard case .start(let ticket) = await a.admit(jobs[1]) else {
            Issue.record("A's job did not start")
            return
        }
        await a.finish(ticket, provider: "echo", model: "echo", succeeded: false, errorClass: .rateLimited, usage: nil, costUSD: nil,
                       retryAfter: .seconds(30), rateLimits: nil)
        // B stops starting the model within moments, although its lease has 30 s to run.
        try await AdmissionTests.eventually("B's next start waits for the cooldown", timeout: .seconds(10)) {
            Self.limit(await b.admit(jobs[2])) == "cooldown"
        }
        #expect(b.leasedCapacity[limiter.key("rl", "m:echo/echo", "rpm")] == nil, "B still holds its lease")
        // Nothing was lost: what B's lease held goes back to the bucket.
        await b.returnLeases(all: true)
        #expect(b.leasedCapacity.isEmpty)
    }

    @Test func aBreakerFailureInOneWorkerSendsAnothersStartsToRedis() async throws {
        let h = try WorkerHarness.current
        _ = try await JobStore(postgres: h.postgres).setModelLimits(provider: "echo", model: "echo", rpm: 100_000, tpm: 100_000_000)
        let prefix = "test-" + UUID().uuidString.lowercased()
        let a = try await Self.running(h, prefix: prefix)
        let b = try await Self.running(h, prefix: prefix)
        let jobs = try await LeasingTests.claimed(h, 4)
        guard case .start(let first) = await b.admit(jobs[0]), first?.leased == true else {
            Issue.record("B's first start was not leased")
            return
        }
        guard case .start(let ticket) = await a.admit(jobs[1]) else {
            Issue.record("A's job did not start")
            return
        }
        // One server error at A: the breaker has a failure on record (it is not open).
        await a.finish(ticket, provider: "echo", model: "echo", succeeded: false, errorClass: .serverError, usage: nil, costUSD: nil,
                       retryAfter: nil, rateLimits: nil)
        // B's starts are decided by the admission script again (which counts their successes
        // in the breaker), not from its lease.
        try await AdmissionTests.eventually("B's next start is decided in Redis", timeout: .seconds(10)) {
            guard case .start(let next) = await b.admit(jobs[2]), let next else { return false }
            return !next.leased
        }
    }
}
