import Foundation
import Logging
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

@Suite("Row-level security, wait and cancel")
struct SecurityAndWaitTests {
    @Test(.migratedDatabase()) func tenantRolesSeeOnlyTheirOwnJobs() async throws {
        let db = try TestDatabase.current
        let suffix = db.name.suffix(8)
        let roleA = "tenant_a_\(suffix)", roleB = "tenant_b_\(suffix)"
        for (role, tenant) in [(roleA, "alpha"), (roleB, "beta")] {
            try await db.createRole(role, "LOGIN IN ROLE sluice_tenant")
            _ = try await db.postgres.query("INSERT INTO sluice.tenants (id) VALUES ($1)", [tenant])
            _ = try await db.postgres.query("INSERT INTO sluice.tenant_roles VALUES ($1, $2)", [role, tenant])
        }
        let alphaJob = try await db.client.enqueue(echoSpec("alpha", "a")).id
        let betaJob = try await db.client.enqueue(echoSpec("beta", "b")).id

        try await db.postgres.withTransaction { conn in
            _ = try await conn.query("SET LOCAL ROLE \(unescaped: roleA)")
            let visible = try await conn.query("SELECT id FROM sluice.jobs").rows.map { try $0.decode(UUID.self, at: 0) }
            #expect(visible == [alphaJob])
            let viaView = try await conn.query("SELECT count(*) FROM sluice.job_view WHERE tenant = 'beta'").rows[0].decode(Int.self, at: 0)
            #expect(viaView == 0)
            let status = try await conn.query("SELECT count(*) FROM sluice.job_status($1)", [betaJob]).rows[0].decode(Int.self, at: 0)
            #expect(status == 0)
            let own = try await conn.query("SELECT sluice.enqueue('alpha', 'normal', 'echo', 'echo', $1::jsonb)",
                                           [#"{"messages":[{"role":"user","content":"x"}]}"#])
            #expect(own.rows.count == 1)
            // Queue depth: its own tenant's, never another's (the counters are row-level secured).
            let depths = try await conn.query("SELECT sluice.queue_depth('alpha')::int, sluice.queue_depth('beta')::int").rows[0]
            #expect(try depths.decode(Int.self, at: 0) == 2)
            #expect(try depths.decode(Int.self, at: 1) == 0)
            let counterRows = try await conn.query("SELECT count(*)::int FROM sluice.tenant_queue_depth WHERE tenant = 'beta'")
            #expect(try counterRows.rows[0].decode(Int.self, at: 0) == 0)
        }
        #expect(try await db.count("SELECT sluice.queue_depth('beta')::int") == 1)
        // Role A can neither enqueue for beta nor cancel beta's job nor read its secrets.
        await #expect(throws: PostgresError.self) {
            try await db.postgres.withTransaction { conn in
                _ = try await conn.query("SET LOCAL ROLE \(unescaped: roleA)")
                _ = try await conn.query("SELECT sluice.enqueue('beta', 'normal', 'echo', 'echo', $1::jsonb)",
                                         [#"{"messages":[{"role":"user","content":"x"}]}"#])
            }
        }
        do {
            try await db.postgres.withTransaction { conn in
                _ = try await conn.query("SET LOCAL ROLE \(unescaped: roleA)")
                _ = try await conn.query("SELECT sluice.cancel($1)", [betaJob])
            }
            Issue.record("cancel of another tenant's job succeeded")
        } catch let error as PostgresError {
            #expect(error.sqlState == "SL005")
        }
        await #expect(throws: PostgresError.self) {
            try await db.postgres.withTransaction { conn in
                _ = try await conn.query("SET LOCAL ROLE \(unescaped: roleB)")
                _ = try await conn.query("SELECT * FROM sluice.tenant_secrets")
            }
        }
        // Direct writes are refused: enqueue and cancel go through the functions, which
        // validate and admit (a direct INSERT once skipped both, even for a paused tenant).
        for sql in ["INSERT INTO sluice.jobs (tenant, provider, model, request) VALUES ('alpha', 'echo', 'nope', '{}')",
                    "UPDATE sluice.jobs SET state = 'succeeded', finished_at = now() WHERE tenant = 'alpha'"] {
            do {
                try await db.postgres.withTransaction { conn in
                    _ = try await conn.query("SET LOCAL ROLE \(unescaped: roleA)")
                    _ = try await conn.query(sql, [])
                }
                Issue.record("a tenant role wrote jobs directly: \(sql)")
            } catch let error as PostgresError {
                #expect(error.sqlState == "42501")
            }
        }
        // Switching to the group role does not make a tenant role an operator.
        do {
            try await db.postgres.withTransaction { conn in
                _ = try await conn.query("SET LOCAL ROLE \(unescaped: roleA)")
                _ = try await conn.query("SET LOCAL ROLE sluice_tenant")
                _ = try await conn.query("SELECT sluice.enqueue('beta', 'normal', 'echo', 'echo', $1::jsonb)",
                                         [#"{"messages":[{"role":"user","content":"x"}]}"#])
            }
            Issue.record("the group role enqueued for another tenant")
        } catch let error as PostgresError {
            #expect(error.sqlState == "SL006")
        }
        // Its own job it can cancel.
        let cancelled = try await db.postgres.withTransaction { conn in
            _ = try await conn.query("SET LOCAL ROLE \(unescaped: roleA)")
            return try await conn.query("SELECT sluice.cancel($1)", [alphaJob]).rows[0].decode(String.self, at: 0)
        }
        #expect(cancelled == "cancelled")
        let beta = try #require(try await db.client.job(betaJob))
        #expect(beta.state == .queued)
    }

    @Test(.migratedDatabase()) func cancelQueuedJob() async throws {
        let db = try TestDatabase.current
        let id = try await db.client.enqueue(echoSpec()).id
        #expect(try await db.client.cancel(id) == .cancelled)
        let job = try #require(try await db.client.job(id))
        #expect(job.state == .cancelled)
        #expect(job.finishedAt != nil)
        // Cancelling again leaves it as it is; an unknown id is notFound.
        #expect(try await db.client.cancel(id) == .cancelled)
        await #expect(throws: SluiceError.self) { try await db.client.cancel(UUID()) }
    }

    @Test(.migratedDatabase()) func waitWakesWhenAnotherConnectionFinishesTheJob() async throws {
        let db = try TestDatabase.current
        let id = try await db.client.enqueue(echoSpec()).id
        let claimed = try await db.postgres.query(
            "SELECT id, attempt FROM sluice.claim('w-test', 10, enum_range(NULL::sluice.lane), NULL, '30 seconds')")
        #expect(claimed.rows.count == 1)
        let clock = ContinuousClock()
        let finisher = Task {
            try await Task.sleep(for: .milliseconds(300))
            let at = clock.now
            let items = #"[{"id":"\#(id.uuidString)","attempt":1,"outcome":"succeeded","usage":{"input":1,"output":2},"result":{"output_text":"ok","provider":"echo","model":"echo"}}]"#
            _ = try await db.postgres.query("SELECT sluice.finish_attempts('w-test', $1::jsonb)", [items])
            return at
        }
        let job = try await db.client.wait(for: id, timeout: .seconds(60))
        let returned = clock.now
        let finishedAt = try await finisher.value
        #expect(job.state == .succeeded)
        // Woken by NOTIFY, not by the timeout (60 s). The bound is generous: the finishing
        // statement itself took 8.6 s once on a saturated machine; wake-up latency is measured
        // by the benchmark (scripts/bench queue, section wait).
        #expect(returned - finishedAt < .seconds(20))
        let result = try #require(try await db.client.result(id))
        #expect(result.outputText == "ok")
        #expect(result.usage.outputTokens == 2)
    }

    @Test(.migratedDatabase()) func oneCompletionOfManyJobsWakesEveryWaiter() async throws {
        let db = try TestDatabase.current
        // 450 jobs finished by one statement: their ids go out in three notifications of up
        // to 200; waiters on the first, a middle and the last job must all wake.
        let ids = try await db.client.enqueue(batch: (0..<450).map { _ in echoSpec() }).map(\.id)
        _ = try await db.postgres.query("UPDATE sluice.tenants SET max_concurrency = 1000 WHERE id = 'acme'")
        let claimed = try await db.postgres.query(
            "SELECT count(*)::int FROM sluice.claim('w-test', 1000, enum_range(NULL::sluice.lane), NULL, '30 seconds')")
        #expect(try claimed.rows[0].decode(Int.self, at: 0) == 450)
        let watched = [ids[0], ids[249], ids[449]]
        let client = db.client
        let postgres = db.postgres
        let states = try await withThrowingTaskGroup(of: JobState.self) { group in
            for id in watched {
                group.addTask { try await client.wait(for: id, timeout: .seconds(20)).state }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(300))
                let items = "[" + ids.map { #"{"id":"\#($0.uuidString)","attempt":1,"outcome":"succeeded","result":{"output_text":"ok","provider":"echo","model":"echo"}}"# }
                    .joined(separator: ",") + "]"
                let done = try await postgres.query("SELECT count(*)::int FROM sluice.finish_attempts('w-test', $1::jsonb)", [items])
                #expect(try done.rows[0].decode(Int.self, at: 0) == 450)
                return .succeeded
            }
            return try await group.reduce(into: [JobState]()) { $0.append($1) }
        }
        #expect(states == [.succeeded, .succeeded, .succeeded, .succeeded])
    }

    @Test(.migratedDatabase()) func waitTimesOut() async throws {
        let db = try TestDatabase.current
        let id = try await db.client.enqueue(echoSpec()).id
        do {
            _ = try await db.client.wait(for: id, timeout: .milliseconds(200))
            Issue.record("wait returned for a queued job")
        } catch {
            #expect(error.code == .timeout)
        }
    }
}
