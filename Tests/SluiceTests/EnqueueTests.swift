import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

@Suite("Enqueue", .migratedDatabase())
struct EnqueueTests {
    @Test func enqueueStoresTheSpec() async throws {
        let db = try TestDatabase.current
        let spec = JobSpec(tenant: "acme", lane: .high, provider: "echo", model: "echo", request: chat("hi there"),
                           maxOutputTokens: 64, maxAttempts: 3, timeout: .seconds(30), metadata: JSONDocument(#"{"k":1}"#),
                           traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        let enqueued = try await db.client.enqueue(spec)
        #expect(enqueued.created)
        let job = try #require(try await db.client.job(enqueued.id))
        #expect(job.tenant == "acme")
        #expect(job.lane == .high)
        #expect(job.state == .queued)
        #expect(job.maxOutputTokens == 64)
        #expect(job.maxAttempts == 3)
        #expect(job.timeout == .seconds(30))
        #expect(job.attempt == 0)
        #expect(job.traceparent == spec.traceparent)
        #expect(job.metadata.text.contains("\"k\""))
        #expect(job.estimatedInputTokens > 0)
    }

    @Test func aTenantWithJobsCannotBeDeleted() async throws {
        let db = try TestDatabase.current
        _ = try await db.client.enqueue(echoSpec("keeper"))
        _ = try await db.postgres.query("INSERT INTO sluice.tenants (id) VALUES ('empty')")
        // jobs.tenant has no foreign key (per-row checks were too slow); the trigger guards it.
        do {
            _ = try await db.postgres.query("DELETE FROM sluice.tenants WHERE id = 'keeper'")
            Issue.record("deleting a tenant with jobs succeeded")
        } catch let error as PostgresError {
            #expect(error.sqlState == "23503")
            #expect(error.constraint == "tenant_has_jobs")
            #expect(error.message.contains("keeper"))
        }
        #expect(try await db.count("SELECT count(*)::int FROM sluice.tenants WHERE id = 'keeper'") == 1)
        _ = try await db.postgres.query("DELETE FROM sluice.tenants WHERE id = 'empty'")
        #expect(try await db.count("SELECT count(*)::int FROM sluice.tenants WHERE id = 'empty'") == 0)
    }

    @Test func concurrentEnqueuesWithOneIdempotencyKeyMakeOneJob() async throws {
        let db = try TestDatabase.current
        let results = try await withThrowingTaskGroup(of: EnqueuedJob.self) { group in
            for _ in 0..<24 {
                group.addTask { try await db.client.enqueue(echoSpec("acme", "same", key: "order-42")) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(results.map(\.id)).count == 1)
        #expect(results.filter(\.created).count == 1)
        let count = try await db.postgres.query("SELECT count(*) FROM sluice.jobs").rows[0].decode(Int.self, at: 0)
        #expect(count == 1)
        // Another tenant may use the same key.
        let other = try await db.client.enqueue(echoSpec("globex", "same", key: "order-42"))
        #expect(other.created && other.id != results[0].id)
    }

    @Test func transactionalEnqueueExistsOnlyIfCommitted() async throws {
        let db = try TestDatabase.current
        struct Boom: Error {}
        var rolledBack: UUID?
        do {
            try await db.postgres.withTransaction { conn in
                let job = try await SluiceClient.enqueue(echoSpec(), in: conn)
                _ = job
                throw Boom()
            }
        } catch is Boom {}
        let committed = try await db.postgres.withTransaction { conn in
            try await SluiceClient.enqueue(echoSpec("acme", "kept"), in: conn).id
        }
        _ = rolledBack
        let rows = try await db.postgres.query("SELECT id FROM sluice.jobs")
        #expect(rows.rows.count == 1)
        #expect(try rows.rows[0].decode(UUID.self, at: 0) == committed)
        rolledBack = nil
    }

    @Test func tenThousandJobBatch() async throws {
        let db = try TestDatabase.current
        let specs = (0..<10_000).map { echoSpec("bulk-\($0 % 7)", "job \($0)", lane: .batch) }
        let jobs = try await db.client.enqueue(batch: specs)
        #expect(jobs.count == 10_000)
        #expect(Set(jobs.map(\.id)).count == 10_000)
        let count = try await db.postgres.query("SELECT count(*) FROM sluice.jobs WHERE lane = 'batch'").rows[0].decode(Int.self, at: 0)
        #expect(count == 10_000)
    }

    @Test func batchIsAllOrNothingAndReportsEveryBadIndex() async throws {
        let db = try TestDatabase.current
        var specs = (0..<5).map { echoSpec("acme", "ok \($0)") }
        specs[1].tenant = "Bad Tenant"
        specs[3].target = .model(provider: "echo", model: "nope")
        do {
            _ = try await db.client.enqueue(batch: specs)
            Issue.record("expected invalidSpec")
        } catch {
            #expect(error.code == .invalidSpec)
            #expect(error.batchErrors.map(\.index) == [1, 3])
            #expect(error.batchErrors.map(\.field) == ["tenant", "model"])
            #expect(error.batchErrors[1].message.contains("known models: echo"))
        }
        let count = try await db.postgres.query("SELECT count(*) FROM sluice.jobs").rows[0].decode(Int.self, at: 0)
        #expect(count == 0)
    }

    @Test func enqueueWakesWorkersOfItsLane() async throws {
        let db = try TestDatabase.current
        let stream = try await db.postgres.startListening(["sluice_jobs"])
        let first = Task { () -> String? in
            for await event in stream {
                if case .notification(let note) = event { return note.payload }
            }
            return nil
        }
        _ = try await db.client.enqueue(echoSpec("acme", "wake", lane: .high))
        #expect(await first.value == "high")
    }

    @Test func listPagesNewestFirst() async throws {
        let db = try TestDatabase.current
        var ids: [UUID] = []
        for i in 0..<7 { ids.append(try await db.client.enqueue(echoSpec("acme", "n\(i)")).id) }
        _ = try await db.client.enqueue(echoSpec("other", "x"))
        let first = try await db.client.list(tenant: "acme", limit: 3)
        #expect(first.map(\.id) == Array(ids.reversed().prefix(3)))
        let second = try await db.client.list(tenant: "acme", limit: 3, after: first.last!.id)
        #expect(second.map(\.id) == Array(ids.reversed().dropFirst(3).prefix(3)))
        let none = try await db.client.list(tenant: "acme", state: .succeeded)
        #expect(none.isEmpty)
        // Filtered by state, with pagination: cancel two, list queued and cancelled apart.
        for id in [ids[1], ids[4]] { _ = try await db.client.cancel(id) }
        let queued = ids.reversed().filter { $0 != ids[1] && $0 != ids[4] }
        let queuedFirst = try await db.client.list(tenant: "acme", state: .queued, limit: 3)
        #expect(queuedFirst.map(\.id) == Array(queued.prefix(3)))
        let queuedRest = try await db.client.list(tenant: "acme", state: .queued, limit: 10, after: queuedFirst.last!.id)
        #expect(queuedRest.map(\.id) == Array(queued.dropFirst(3)))
        let cancelled = try await db.client.list(tenant: "acme", state: .cancelled, lane: .normal)
        #expect(cancelled.map(\.id) == [ids[4], ids[1]])
        #expect(try await db.client.list(tenant: "acme", state: .cancelled, lane: .batch).isEmpty)
    }
}

/// Concurrent single enqueues share commits (EnqueueCoalescer), and each call still gets the
/// outcome it would have had alone.
@Suite("Enqueue group commit", .migratedDatabase())
struct EnqueueGroupCommitTests {
    @Test func concurrentSingleEnqueuesShareTransactions() async throws {
        let db = try TestDatabase.current
        let ids = try await withThrowingTaskGroup(of: UUID.self) { group in
            for i in 0..<200 { group.addTask { try await db.client.enqueue(echoSpec("acme", "job \(i)")).id } }
            return try await group.reduce(into: [UUID]()) { $0.append($1) }
        }
        #expect(Set(ids).count == 200)
        #expect(try await db.count("SELECT count(*)::int FROM sluice.jobs") == 200)
        // Rows written by one transaction share xmin: fewer transactions than calls.
        let transactions = try await db.count("SELECT count(DISTINCT xmin::text)::int FROM sluice.jobs")
        #expect(transactions < 200)
    }

    @Test func aFailingCallInAGroupFailsAloneWithItsOwnError() async throws {
        let db = try TestDatabase.current
        _ = try await db.client.enqueue(echoSpec("sleepy", "first"))
        _ = try await db.postgres.query("UPDATE sluice.tenants SET paused = true WHERE id = 'sleepy'")
        enum Kind: Sendable { case good, badModel, paused }
        let kinds: [Kind] = (0..<120).map { $0 == 37 ? .badModel : ($0 == 81 ? .paused : .good) }
        let outcomes = await withTaskGroup(of: (Kind, Result<EnqueuedJob, SluiceError>).self) { group in
            for kind in kinds {
                group.addTask {
                    let spec: JobSpec = switch kind {
                    case .good: echoSpec("acme", "ok")
                    case .badModel: JobSpec(tenant: "acme", provider: "echo", model: "nope", request: chat("x"))
                    case .paused: echoSpec("sleepy", "later")
                    }
                    do throws(SluiceError) { return (kind, .success(try await db.client.enqueue(spec))) } catch { return (kind, .failure(error)) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        for (kind, outcome) in outcomes {
            switch (kind, outcome) {
            case (.good, .success(let job)): #expect(job.created)
            case (.badModel, .failure(let error)):
                #expect(error.code == .invalidSpec)
                #expect(error.field == "model")
                #expect(error.message.hasPrefix("model:"), "\(error.message)")   // a single spec's message
            case (.paused, .failure(let error)): #expect(error.code == .tenantPaused)
            default: Issue.record("\(kind): unexpected \(outcome)")
            }
        }
        #expect(try await db.count("SELECT count(*)::int FROM sluice.jobs WHERE tenant = 'acme'") == 118)
        #expect(try await db.count("SELECT count(*)::int FROM sluice.jobs WHERE tenant = 'sleepy'") == 1)
    }
}
