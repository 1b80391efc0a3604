import Foundation
import Logging
import Sluice
import SluicePostgres
import SluiceWorker
import SluiceTestSupport
import Testing

/// The claim path's latency levers (docs/ARCHITECTURE.md, "The worker"): claims are capped at
/// `maxClaimBatch` jobs (many free slots become several consecutive claims), and the worker
/// sends its completions' `sluice_done` notifications after they commit, from a separate
/// statement, without a waiter ever missing a finished job.
@Suite("Worker: claim cap and done notifications after commit", .workerDatabase)
struct ClaimSizingTests {
    /// 64 free slots and a cap of 8: no claim takes more than 8 jobs (the jobs of one claim share
    /// its transaction's `started_at`), and consecutive claims still fill more slots than one
    /// claim may (more than 8 jobs run at once).
    @Test func aClaimNeverTakesMoreThanTheCapAndConsecutiveClaimsFillTheSlots() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<200).map { echo("acme", "job \($0)", metadata: #"{"echo_delay_ms":300}"#) })
        _ = try await h.postgres.query("UPDATE sluice.tenants SET max_concurrency = 1000 WHERE id = 'acme'")
        var configuration = WorkerHarness.testConfiguration(concurrency: 64)
        configuration.maxClaimBatch = 8
        let worker = try h.makeWorker(configuration)
        let mostRunning = try await h.withWorkers([worker]) {
            var most = 0
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                most = max(most, try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'running'"))
                if try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'succeeded'") == 200 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            return most
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'succeeded'") == 200)
        let largest = try await h.count("""
            SELECT max(n)::int FROM (SELECT count(*) AS n FROM sluice.jobs GROUP BY lease_owner, started_at) c
            """)
        // (Finished jobs keep the started_at their claim gave them.)
        #expect(largest <= 8, "a claim took \(largest) jobs with a cap of 8")
        #expect(try await h.count("SELECT count(DISTINCT started_at) FROM sluice.jobs") >= 25)
        #expect(mostRunning > 8, "consecutive claims should fill more than one claim's worth of slots (most running: \(mostRunning))")
    }

    @Test func theDefaultCapIsSmallAndValidated() throws {
        #expect(WorkerConfiguration().maxClaimBatch == 128)
        #expect(WorkerConfiguration().notifyDoneAfterCommit)
        var bad = WorkerConfiguration()
        bad.maxClaimBatch = 0
        #expect(throws: WorkerError.self) { try bad.validate() }
    }

    /// Waiters registered before, while and after a worker finishes 300 jobs, on a client whose
    /// safety re-read comes only after 60 s: each must be woken by its job's notification, sent
    /// after the completion commits (a missed one would time out after 30 s).
    @Test(arguments: [true, false])
    func waitersSeeEveryJobAWorkerFinishes(afterCommit: Bool) async throws {
        let h = try WorkerHarness.current
        let client = SluiceClient(postgres: h.postgres, logger: h.logger, waitRecheck: .seconds(60))
        let ids = try await client.enqueue(batch: (0..<300).map {
            echo("acme", "job \($0)", metadata: "{\"echo_delay_ms\":\($0 % 7 * 20)}")
        }).map(\.id)
        _ = try await h.postgres.query("UPDATE sluice.tenants SET max_concurrency = 1000 WHERE id = 'acme'")
        var configuration = WorkerHarness.testConfiguration(concurrency: 64)
        configuration.notifyDoneAfterCommit = afterCommit
        let worker = try h.makeWorker(configuration)
        @Sendable func waitAll(_ ids: ArraySlice<UUID>) async throws -> [JobState] {
            try await withThrowingTaskGroup(of: JobState.self) { group in
                for id in ids { group.addTask { try await client.wait(for: id, timeout: .seconds(30)).state } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        // A third wait from before the worker starts, a third start while it runs, the rest
        // once every job is done.
        let early = Task { try await waitAll(ids[0..<100]) }
        try await Task.sleep(for: .milliseconds(200))
        let states = try await h.withWorkers([worker]) {
            let during = try await waitAll(ids[100..<200])
            let both = try await early.value + during
            // The worker keeps running until every job is done (the late waiters' too).
            let deadline = ContinuousClock.now + .seconds(30)
            while try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'succeeded'") < ids.count,
                  ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            return both
        }
        let late = try await waitAll(ids[200..<300])
        #expect(states.count == 200 && states.allSatisfy { $0 == .succeeded })
        #expect(late.count == 100 && late.allSatisfy { $0 == .succeeded })
    }

    /// The notification never comes (the finishing process died between its commit and its
    /// notification: here the completion simply does not notify): the waiter re-reads its job
    /// after `waitRecheck` and returns it, long before its timeout.
    @Test func aWaiterRereadsItsJobWhenTheNotificationNeverComes() async throws {
        let h = try WorkerHarness.current
        let client = SluiceClient(postgres: h.postgres, logger: h.logger, waitRecheck: .milliseconds(200))
        let id = try await client.enqueue(echo("acme", "lost")).id
        let claimed = try await client.store.claim(.init(
            worker: "w-lost", limit: 1, lanes: Lane.allCases, tenants: nil, lease: .seconds(60),
            starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
        #expect(claimed.map(\.id) == [id])
        let finisher = Task {
            try await Task.sleep(for: .milliseconds(500))
            let outcome = AttemptOutcome(jobID: id, attempt: 1, kind: .cancelled, startedAt: Date(), duration: .zero)
            return try await client.store.finishAttempts(worker: "w-lost", outcomes: [outcome], notifyDone: false)
        }
        let start = ContinuousClock.now
        let job = try await client.wait(for: id, timeout: .seconds(60))
        #expect(job.state == .cancelled)
        #expect(try await finisher.value == [id])
        #expect(ContinuousClock.now - start < .seconds(30), "woken by the re-read, not the timeout")
    }
}
