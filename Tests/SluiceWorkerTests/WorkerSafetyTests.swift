import Foundation
import Sluice
import SluicePostgres
import SluiceWorker
import SluiceTestSupport
import Testing

@Suite("Worker safety: leases, stale completions, semaphores, pruning", .workerDatabase)
struct WorkerSafetyTests {
    @Test func expiredLeaseIsRescuedAndTheJobSucceedsOnce() async throws {
        let h = try WorkerHarness.current
        let id = try await h.client.enqueue(echo()).id
        // A worker that claims and then "dies": its lease expires in 300 ms and is never renewed.
        _ = try await h.postgres.query(
            "SELECT id FROM sluice.claim('ghost', 1, enum_range(NULL::sluice.lane), NULL, '300 milliseconds')")
        let job = try await h.withWorkers([try h.makeWorker()]) {
            try await h.client.wait(for: id, timeout: .seconds(20))
        }
        #expect(job.state == .succeeded)
        #expect(job.attempt == 2)
        #expect(try await h.count("SELECT count(*) FROM sluice.results WHERE job_id = $1", [id]) == 1)
        let outcomes = try await h.postgres.query("SELECT outcome FROM sluice.attempts WHERE job_id = $1 ORDER BY attempt", [id])
            .rows.map { try $0.decode(String.self, at: 0) }
        #expect(outcomes == ["lease_expired", "succeeded"])
        // The ghost wakes up and tries to complete its attempt: refused, nothing changes.
        let stale = #"[{"id":"\#(id.uuidString)","attempt":1,"outcome":"dead","error_class":"internal","error_message":"late"}]"#
        let applied = try await h.postgres.query("SELECT sluice.finish_attempts('ghost', $1::jsonb)", [stale])
        #expect(applied.rows.isEmpty)
        #expect(try await h.client.job(id)?.state == .succeeded)
    }

    /// `sluice.rescue_worker` (the supervisor's rescue of a dead child) moves only the jobs
    /// whose lease holder is exactly that worker id, as a new attempt with an `interrupted` row;
    /// the dead worker's late completion is then refused.
    @Test func rescueWorkerMovesOnlyThatWorkersJobs() async throws {
        let h = try WorkerHarness.current
        let store = JobStore(postgres: h.postgres)
        let ids = try await h.client.enqueue(batch: (0..<4).map { _ in echo() }).map(\.id)
        _ = try await h.postgres.query("SELECT id FROM sluice.claim('host:1:dead', 2, enum_range(NULL::sluice.lane), NULL, '1 hour')")
        _ = try await h.postgres.query("SELECT id FROM sluice.claim('host:1:deadx', 1, enum_range(NULL::sluice.lane), NULL, '1 hour')")
        _ = try await h.postgres.query("SELECT id FROM sluice.claim('host:11:dead', 1, enum_range(NULL::sluice.lane), NULL, '1 hour')")
        _ = try await h.postgres.query(
            "INSERT INTO sluice.workers (id, host, pid, lanes, concurrency) VALUES ('host:1:dead', 'host', 1, '{normal}', 2)")
        let dead = try await h.postgres.query("SELECT id FROM sluice.jobs WHERE lease_owner = 'host:1:dead'").rows.map { try $0.decode(UUID.self, at: 0) }
        #expect(dead.count == 2)

        #expect(try await store.rescueWorker("host:1:dead", reason: "killed by signal 9") == 2)
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'queued' AND attempt = 1 AND lease_owner IS NULL", [dead]) == 2)
        #expect(try await h.count("""
            SELECT count(*) FROM sluice.attempts WHERE job_id = ANY($1) AND outcome = 'interrupted' AND worker = 'host:1:dead'
               AND error_message LIKE '%killed by signal 9%'
            """, [dead]) == 2)
        // Other workers' jobs, even with ids that contain or extend the dead one, are untouched.
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'running'", [ids]) == 2)
        #expect(try await h.count("SELECT count(*) FROM sluice.workers WHERE id = 'host:1:dead'") == 0)
        // A second rescue finds nothing; the dead worker's late completion is refused.
        #expect(try await store.rescueWorker("host:1:dead", reason: "again") == 0)
        let stale = #"[{"id":"\#(dead[0].uuidString)","attempt":1,"outcome":"succeeded","result":{"output_text":"late"}}]"#
        #expect(try await h.postgres.query("SELECT sluice.finish_attempts('host:1:dead', $1::jsonb)", [stale]).rows.isEmpty)
        #expect(try await h.count("SELECT count(*) FROM sluice.results WHERE job_id = ANY($1)", [dead]) == 0)
        // An empty id is refused with a typed error naming the field.
        await #expect(throws: SluiceError.self) { _ = try await store.rescueWorker("", reason: "x") }
    }

    /// A retry's time is the database's clock plus the worker's delay: a worker whose clock is
    /// 5 minutes ahead (retryAt) does not push the retry 5 minutes out.
    @Test func retriesAreScheduledOnTheDatabaseClock() async throws {
        let h = try WorkerHarness.current
        let store = JobStore(postgres: h.postgres)
        let id = try await h.client.enqueue(echo()).id
        let claimed = try await store.claim(.init(worker: "skewed", limit: 1, lanes: Lane.allCases, tenants: nil, lease: .seconds(60),
                                                   starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
        try #require(claimed.map(\.id) == [id])
        var outcome = AttemptOutcome(jobID: id, attempt: 1, kind: .retry, startedAt: Date().addingTimeInterval(300), duration: .milliseconds(5))
        outcome.errorClass = .serverError
        outcome.errorMessage = "500"
        outcome.retryAt = Date().addingTimeInterval(300 + 2)  // the skewed worker's clock: now + 5 min + 2 s
        outcome.retryDelay = .seconds(2)
        #expect(try await store.finishAttempts(worker: "skewed", outcomes: [outcome]) == 1)
        let offset = try await h.postgres.query("SELECT extract(epoch FROM run_at - now())::float8 FROM sluice.jobs WHERE id = $1", [id])
            .rows[0].decode(Double.self, at: 0)
        #expect(offset > 1 && offset <= 2.5, "run_at is \(offset) s from the database's now")
    }

    @Test func leaseOnLastAttemptExpiringMakesTheJobDead() async throws {
        let h = try WorkerHarness.current
        let id = try await h.client.enqueue(echo(maxAttempts: 1)).id
        _ = try await h.postgres.query(
            "SELECT id FROM sluice.claim('ghost', 1, enum_range(NULL::sluice.lane), NULL, '1 millisecond')")
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await h.count("SELECT sluice.rescue_expired()") == 1)
        let job = try #require(try await h.client.job(id))
        #expect(job.state == .dead)
        #expect(try await h.count("SELECT count(*) FROM sluice.dead_letters WHERE job_id = $1", [id]) == 1)
    }

    @Test func tenantConcurrencyIsNeverExceededAcrossWorkers() async throws {
        let h = try WorkerHarness.current
        _ = try await h.postgres.query("INSERT INTO sluice.tenants (id, max_concurrency) VALUES ('limited', 3)")
        let ids = try await h.client.enqueue(batch: (0..<24).map { _ in echo("limited", "x", metadata: #"{"echo_delay_ms":150}"#) }).map(\.id)
        let workers = try (0..<3).map { _ in try h.makeWorker(WorkerHarness.testConfiguration(concurrency: 16)) }
        let peak = try await h.withWorkers(workers) {
            var peak = 0
            while try await h.count("SELECT count(*) FROM sluice.jobs WHERE state IN ('queued', 'running')") > 0 {
                peak = max(peak, try await h.count("SELECT count(*) FROM sluice.jobs WHERE tenant = 'limited' AND state = 'running'"))
                try await Task.sleep(for: .milliseconds(10))
            }
            return peak
        }
        #expect(peak == 3)
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'succeeded'", [ids]) == 24)
        // The trigger-kept depth counters followed every claim and completion.
        #expect(try await h.count("SELECT sluice.queue_depth('limited')::int") == 0)
    }

    /// The per-tenant counters of queued jobs (admission reads them) and running jobs (the
    /// claim's concurrency limits) agree with the jobs table at every moment (one snapshot
    /// reads both), through claims, retries, dead letters, cancels of queued and running jobs,
    /// and the rescue of an expired lease.
    @Test func queueDepthCountersAgreeWithTheJobsThroughEveryTransition() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<30).map { i in echo("t\(i % 3)", "ok", metadata: #"{"echo_delay_ms":100}"#) })
        _ = try await h.client.enqueue(echo("t0", "retry", metadata: #"{"echo_fail":"server_error","echo_fail_attempts":1}"#))
        _ = try await h.client.enqueue(echo("t1", "dead", metadata: #"{"echo_fail":"auth"}"#))
        let queuedCancel = try await h.client.enqueue(echo("t2", "later", runAt: Date().addingTimeInterval(3600))).id
        let runningCancel = try await h.client.enqueue(echo("t2", "long", metadata: #"{"echo_delay_ms":60000}"#)).id
        // A job claimed by a worker that vanished: its lease expires and it is rescued.
        let orphan = try await h.client.enqueue(echo("t0", "orphan", lane: .interactive)).id
        _ = try await h.postgres.query("SELECT id FROM sluice.claim('ghost', 1, '{interactive}', NULL, '200 milliseconds')")
        // Both counters: queued (admission, autoscaling) and running (the claim's concurrency
        // limits).
        let agree = """
            SELECT count(*)::int
              FROM (SELECT tenant, sum(queued) AS queued, sum(running) AS running
                      FROM sluice.tenant_queue_depth GROUP BY tenant) c
              FULL JOIN (SELECT tenant, count(*) FILTER (WHERE state = 'queued') AS queued,
                                count(*) FILTER (WHERE state = 'running') AS running
                           FROM sluice.jobs WHERE state IN ('queued', 'running') GROUP BY tenant) j USING (tenant)
             WHERE coalesce(c.queued, 0) <> coalesce(j.queued, 0) OR coalesce(c.running, 0) <> coalesce(j.running, 0)
            """
        let samples = try await h.withWorkers([try h.makeWorker()]) {
            var samples = 0
            _ = try await h.client.cancel(queuedCancel)
            for _ in 0..<300 {
                #expect(try await h.count(agree) == 0)
                samples += 1
                if try await h.client.job(runningCancel)?.state == .running {
                    _ = try await h.client.cancel(runningCancel)
                }
                if try await h.count("SELECT count(*)::int FROM sluice.jobs WHERE state IN ('queued', 'running')") == 0 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            return samples
        }
        #expect(samples >= 2)  // compared while work was in flight, not only at the end
        #expect(try await h.client.job(orphan)?.state == .succeeded)
        #expect(try await h.client.job(runningCancel)?.state == .cancelled)
        #expect(try await h.count(agree) == 0)
        #expect(try await h.count("SELECT coalesce(sum(queued), 0)::int FROM sluice.tenant_queue_depth") == 0)
        #expect(try await h.count("SELECT coalesce(sum(running), 0)::int FROM sluice.tenant_queue_depth") == 0)
    }

    @Test func pruningRemovesOldFinishedJobsAndKeepsDeadOnesLonger() async throws {
        let h = try WorkerHarness.current
        let old = try await h.client.enqueue(echo("acme", "old")).id
        let dead = try await h.client.enqueue(echo("acme", "dead")).id
        let fresh = try await h.client.enqueue(echo("acme", "fresh")).id
        _ = try await h.postgres.query("""
            UPDATE sluice.jobs SET state = CASE WHEN id = $2 THEN 'dead'::sluice.job_state ELSE 'succeeded'::sluice.job_state END,
                   finished_at = CASE WHEN id = $3 THEN now() ELSE now() - interval '8 days' END
             WHERE id = ANY($1)
            """, [[old, dead, fresh], dead, fresh])
        let worker = try h.makeWorker()
        #expect(try await worker.prune() == 1)
        let left = try await h.postgres.query("SELECT id FROM sluice.jobs ORDER BY id").rows.map { try $0.decode(UUID.self, at: 0) }
        #expect(Set(left) == [dead, fresh])
    }
}
