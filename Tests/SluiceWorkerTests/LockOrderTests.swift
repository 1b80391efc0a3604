import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Synchronization
import Testing

/// The lock order of job rows (docs/ARCHITECTURE.md, "Lock order"): every statement that may
/// wait for a job row locks its rows in ascending id before it updates them, so heartbeats
/// (`sluice.renew_leases`), completions (`sluice.finish_attempts`) and releases of one worker
/// never wait for each other in a cycle. Before, the heartbeat locked rows in the order its
/// plan visited them and a completion in the order its outcomes came, and the two deadlocked
/// (SQLSTATE 40P01) under saturation.
@Suite("Lock order: heartbeats, completions and releases never deadlock", .workerDatabase)
struct LockOrderTests {
    /// Jobs in play per round; of these, each heartbeat renews a random 3/4 and each completion
    /// group finishes a random 3/8, every list in random order, all four statements at once.
    static let inPlay = 400

    /// A claim writes its counter deltas to shard 0 of each tenant's counters and no other
    /// statement does (enqueue, completion: shards 1-15), so a claim never waits for a counter
    /// row: claims are serialised by the claim lock, and shard 0 is theirs alone.
    @Test func claimsWriteTheirOwnCounterShardAndNothingElseDoes() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<20).map { echo("shard-t", "job \($0)") })
        _ = try await h.postgres.query("UPDATE sluice.tenants SET max_concurrency = 100 WHERE id = 'shard-t'")
        let shard0 = "SELECT coalesce(sum(queued), 0)::int, coalesce(sum(running), 0)::int FROM sluice.tenant_queue_depth WHERE tenant = 'shard-t' AND shard = 0"
        let others = "SELECT coalesce(sum(queued), 0)::int, coalesce(sum(running), 0)::int FROM sluice.tenant_queue_depth WHERE tenant = 'shard-t' AND shard <> 0"
        func pair(_ sql: String) async throws -> [Int] {
            let row = try await h.postgres.query(PostgresQuery(unsafeSQL: sql)).rows[0]
            return [try row.decode(Int.self, at: 0), try row.decode(Int.self, at: 1)]
        }
        #expect(try await pair(shard0) == [0, 0])
        #expect(try await pair(others) == [20, 0])
        let claimed = try await h.client.store.claim(.init(
            worker: "shard-w", limit: 5, lanes: Lane.allCases, tenants: ["shard-t"], lease: .seconds(60),
            starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
        #expect(claimed.count == 5)
        #expect(try await pair(shard0) == [-5, 5])
        #expect(try await pair(others) == [20, 0])
        // Completions count the running jobs down on the other shards.
        let outcomes = claimed.map { AttemptOutcome(jobID: $0.id, attempt: $0.attempt, kind: .cancelled, startedAt: Date(), duration: .milliseconds(1)) }
        #expect(try await h.client.store.finishAttempts(worker: "shard-w", outcomes: outcomes) == 5)
        #expect(try await pair(shard0) == [-5, 5])
        #expect(try await pair(others) == [20, -5])
    }

    @Test func overlappingHeartbeatsAndCompletionsNeverDeadlock() async throws {
        let h = try WorkerHarness.current
        // A table large enough that the planner reaches the rows through the primary key, in
        // the order each statement lists them (not one heap scan order shared by all).
        for _ in 0..<2 {
            _ = try await h.client.enqueue(batch: (0..<10_000).map { echo("t\($0 % 4)", "filler \($0)") })
        }
        _ = try await h.postgres.query("ANALYZE sluice.jobs")
        let all = try await h.postgres.query("SELECT id FROM sluice.jobs ORDER BY random() LIMIT \(unescaped: String(Self.inPlay))")
            .rows.map { try $0.decode(UUID.self, at: 0) }
        let store = h.client.store
        var failures: [String: Int] = [:]
        var rounds = 0
        var finished = 0
        for _ in 0..<40 {
            rounds += 1
            // Every job in play is running under worker w at attempt 1.
            _ = try await h.postgres.query("""
                UPDATE sluice.jobs SET state = 'running', attempt = 1, lease_owner = 'w', finished_at = NULL,
                       lease_expires_at = now() + interval '1 minute', started_at = now()
                 WHERE id = ANY($1)
                """, [all])
            let renewals = (0..<2).map { _ in Array(all.shuffled().prefix(3 * Self.inPlay / 4)) }
            let groups = (0..<2).map { _ in Array(all.shuffled().prefix(3 * Self.inPlay / 8)) }
            let results = await withTaskGroup(of: (applied: Int, sqlState: String?).self) { group in
                for ids in renewals {
                    group.addTask {
                        do {
                            _ = try await store.renewLeases(worker: "w", jobs: ids, lease: .seconds(60))
                            return (0, nil)
                        } catch {
                            return (0, sqlState(error))
                        }
                    }
                }
                for ids in groups {
                    group.addTask {
                        let outcomes = ids.map { id in
                            var outcome = AttemptOutcome(jobID: id, attempt: 1, kind: .retry, startedAt: Date(), duration: .milliseconds(1))
                            outcome.errorClass = .serverError
                            outcome.errorMessage = "try again"
                            outcome.retryAt = Date().addingTimeInterval(3600)
                            return outcome
                        }
                        do {
                            return (try await store.finishAttempts(worker: "w", outcomes: outcomes), nil)
                        } catch {
                            return (0, sqlState(error))
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            for result in results {
                if let state = result.sqlState { failures[state, default: 0] += 1 }
                finished += result.applied
            }
            // What the completions applied is exactly the union of their groups (each job once),
            // and every other job in play is still running with its lease.
            let union = Set(groups.joined())
            if failures.isEmpty {
                #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'queued' AND attempt = 1",
                                          [Array(union)]) == union.count)
                #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'running' AND lease_owner = 'w'",
                                          [all]) == all.count - union.count)
            }
            if !failures.isEmpty { break }
        }
        #expect(failures.isEmpty, "statements failed after \(rounds) rounds, by SQLSTATE (40P01 = deadlock): \(failures)")
        #expect(finished > 0)
    }

    /// Releases (graceful shutdown) and completions of overlapping jobs, concurrently: the
    /// release of a job being completed either wins (queued, attempt not consumed) or finds it
    /// gone; neither deadlocks.
    @Test func overlappingReleasesAndCompletionsNeverDeadlock() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<10_000).map { echo("t\($0 % 4)", "filler \($0)") })
        _ = try await h.postgres.query("ANALYZE sluice.jobs")
        let all = try await h.postgres.query("SELECT id FROM sluice.jobs ORDER BY random() LIMIT 300")
            .rows.map { try $0.decode(UUID.self, at: 0) }
        let store = h.client.store
        var failures: [String: Int] = [:]
        for _ in 0..<30 {
            _ = try await h.postgres.query("""
                UPDATE sluice.jobs SET state = 'running', attempt = 1, lease_owner = 'w', finished_at = NULL,
                       lease_expires_at = now() + interval '1 minute', started_at = now()
                 WHERE id = ANY($1)
                """, [all])
            let released = Array(all.shuffled().prefix(200))
            let completed = Array(all.shuffled().prefix(200))
            let states = await withTaskGroup(of: String?.self) { group in
                group.addTask {
                    do {
                        try await store.release(worker: "w", jobs: released.map { ($0, 1) })
                        return nil
                    } catch { return sqlState(error) }
                }
                group.addTask {
                    do {
                        _ = try await store.renewLeases(worker: "w", jobs: all.shuffled(), lease: .seconds(60))
                        return nil
                    } catch { return sqlState(error) }
                }
                group.addTask {
                    let outcomes = completed.map { AttemptOutcome(jobID: $0, attempt: 1, kind: .cancelled, startedAt: Date(), duration: .zero) }
                    do {
                        _ = try await store.finishAttempts(worker: "w", outcomes: outcomes)
                        return nil
                    } catch { return sqlState(error) }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            for case let state? in states { failures[state, default: 0] += 1 }
            if !failures.isEmpty { break }
            // Every job of both lists left `running` through exactly one of the two.
            let touched = Array(Set(released).union(completed))
            #expect(try await h.count("""
                SELECT count(*) FROM sluice.jobs WHERE id = ANY($1)
                   AND ((state = 'queued' AND attempt = 0) OR (state = 'cancelled' AND attempt = 1))
                """, [touched]) == touched.count)
        }
        #expect(failures.isEmpty, "statements failed, by SQLSTATE (40P01 = deadlock): \(failures)")
    }
}

extension LockOrderTests {
    /// Every statement of the claim path at once, for many rounds: two claims (the advisory
    /// lock, SKIP LOCKED job rows, the fair-queue clock updates, the depth counters, parking and
    /// deleting fair-queue rows), an enqueue of new jobs for the same tenants (depth counters,
    /// then FOR KEY SHARE or an insert on their fair-queue rows), completions of the jobs claimed
    /// the round before with retries due now and later (arrivals, and parked rows unparked by
    /// them), heartbeats of everything running, and a budget hold toggled on one tenant (its
    /// trigger unparks that tenant's fair-queue rows). No statement may fail; every job stays
    /// accounted for (queued, running or finished; none lost).
    @Test func claimsEnqueuesCompletionsAndHeartbeatsNeverDeadlock() async throws {
        let h = try WorkerHarness.current
        let tenants = (0..<6).map { "d\($0)" }
        _ = try await h.client.enqueue(batch: (0..<1_200).map { echo(tenants[$0 % tenants.count], "seed \($0)") })
        _ = try await h.postgres.query("UPDATE sluice.tenants SET max_concurrency = 100000 WHERE id LIKE 'd%'")
        _ = try await h.postgres.query("ANALYZE sluice.jobs")
        let store = h.client.store
        let client = h.client
        let postgres = h.postgres
        var failures: [String: Int] = [:]
        var running: [String: [Job]] = ["w1": [], "w2": []]
        var enqueued = 1_200
        var finishedTotal = 0
        let rounds = 60
        for round in 0..<rounds {
            let previous = running
            let results = await withTaskGroup(of: (worker: String?, claimed: [Job], failure: String?).self) { group in
                for worker in ["w1", "w2"] {
                    group.addTask {
                        do {
                            let jobs = try await store.claim(.init(
                                worker: worker, limit: 48, lanes: Lane.allCases, tenants: nil, lease: .seconds(60),
                                starvationAfter: .seconds(10), reserved: 4, tenantWindow: 256))
                            return (worker, jobs, nil)
                        } catch { return (nil, [], described(error)) }
                    }
                    group.addTask {
                        // The jobs this worker claimed last round: most end (cancelled: a terminal
                        // outcome without a result to make up), some retry now,
                        // some retry later (parked rows), in the order they finished (shuffled).
                        let outcomes = (previous[worker] ?? []).shuffled().enumerated().map { n, job in
                            var outcome = AttemptOutcome(jobID: job.id, attempt: job.attempt,
                                                         kind: n % 4 == 0 ? .retry : .cancelled,
                                                         startedAt: Date(), duration: .milliseconds(1))
                            if outcome.kind == .retry {
                                outcome.errorClass = .serverError
                                outcome.errorMessage = "try again"
                                outcome.retryDelay = n % 8 == 0 ? .zero : .milliseconds(300)
                            }
                            return outcome
                        }
                        guard !outcomes.isEmpty else { return (nil, [], nil) }
                        do {
                            _ = try await store.finishAttempts(worker: worker, outcomes: outcomes, notifyDone: round % 2 == 0)
                            return (nil, [], nil)
                        } catch { return (nil, [], described(error)) }
                    }
                    group.addTask {
                        let ids = (previous[worker] ?? []).map(\.id).shuffled()
                        guard !ids.isEmpty else { return (nil, [], nil) }
                        do {
                            _ = try await store.renewLeases(worker: worker, jobs: ids, lease: .seconds(60))
                            return (nil, [], nil)
                        } catch { return (nil, [], described(error)) }
                    }
                }
                group.addTask {
                    // New jobs for the tenants the claims are charging (one of them scheduled a
                    // moment ahead: a parked fair-queue row for its tenant).
                    let specs = (0..<30).map { n in
                        echo(tenants[(n + round) % 5], "round \(round) job \(n)",
                             runAt: n == 0 ? Date().addingTimeInterval(0.5) : nil)
                    }
                    do {
                        _ = try await client.enqueue(batch: specs)
                        return (nil, [], nil)
                    } catch { return (nil, [], described(error)) }
                }
                group.addTask {
                    do {
                        _ = try await postgres.query("""
                            UPDATE sluice.tenants
                               SET held_until = CASE WHEN held_until IS NULL THEN now() + interval '200 milliseconds' END
                             WHERE id = 'd5'
                            """)
                        return (nil, [], nil)
                    } catch { return (nil, [], described(error)) }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            running = ["w1": [], "w2": []]
            for result in results {
                if let failure = result.failure { failures[failure, default: 0] += 1 }
                if let worker = result.worker { running[worker] = result.claimed }
            }
            enqueued += 30
            finishedTotal += (previous["w1"]?.count ?? 0) + (previous["w2"]?.count ?? 0)
            if !failures.isEmpty { break }
        }
        #expect(failures.isEmpty, "statements failed, by SQLSTATE (40P01 = deadlock): \(failures)")
        // Nothing lost: every job enqueued is in one of the states, and the ones this test
        // claimed in the last round are running.
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE tenant LIKE 'd%'") == enqueued)
        let stillRunning = (running["w1"] ?? []).count + (running["w2"] ?? []).count
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE tenant LIKE 'd%' AND state = 'running'") == stillRunning)
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE tenant LIKE 'd%' AND state = 'cancelled'") > 0)
        #expect(finishedTotal > 0)
    }
}

/// The SQLSTATE behind a store error (or the error's text when there is none).
private func sqlState(_ error: any Error) -> String {
    (error as? SluiceError)?.underlying?.sqlState ?? "\(error)"
}

/// The SQLSTATE and message of a store error, for a failure report.
private func described(_ error: any Error) -> String {
    "\(sqlState(error)): \(String(reflecting: error))"
}

extension LockOrderTests {
    /// A heartbeat never waits for a job row another transaction holds (SKIP LOCKED): such a
    /// row (a completion being written, a canceller, a rescuer) is left for the next heartbeat
    /// and reported as still owned, while every other lease is renewed at once. Before, the
    /// heartbeat waited for it while holding all the rows it had renewed, and every completion
    /// of the worker queued behind it.
    @Test func aHeartbeatDoesNotWaitForARowAnotherTransactionHolds() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<3).map { echo("hb-t", "heartbeat \($0)") })
        _ = try await h.postgres.query("UPDATE sluice.tenants SET max_concurrency = 100 WHERE id = 'hb-t'")
        let store = h.client.store
        let claimed = try await store.claim(.init(
            worker: "hb-w", limit: 3, lanes: Lane.allCases, tenants: ["hb-t"], lease: .seconds(60),
            starvationAfter: .seconds(10), reserved: 0, tenantWindow: 256))
        #expect(claimed.count == 3)
        let ids = claimed.map(\.id)
        let held = ids[0]

        let (release, letGo) = AsyncStream<Void>.makeStream()
        let (locked, reportLocked) = AsyncStream<Void>.makeStream()
        let postgres = h.postgres
        let holder = Task {
            defer { reportLocked.finish() }
            try await postgres.withTransaction { conn in
                _ = try await conn.query("SELECT id FROM sluice.jobs WHERE id = $1 FOR UPDATE", [held])
                reportLocked.yield()
                for await _ in release { break }
            }
        }
        var lockedIterator = locked.makeAsyncIterator()
        _ = await lockedIterator.next()
        // The holder lets go after 5 s whatever happens, so a heartbeat that waits for it ends
        // the test with a failure instead of a hang.
        let releasedByTimer = Atomic<Bool>(false)
        let timer = Task {
            try await Task.sleep(for: .seconds(5))
            releasedByTimer.store(true, ordering: .sequentiallyConsistent)
            letGo.yield()
        }

        let renewals = try await store.renewLeases(worker: "hb-w", jobs: ids, lease: .seconds(600))
        let waited = releasedByTimer.load(ordering: .sequentiallyConsistent)
        #expect(!waited, "the heartbeat waited for the held row")
        #expect(Set(renewals.filter(\.owned).map(\.jobID)) == Set(ids))
        let leaseSQL = "SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND greatest(lease_expires_at, lease_renewed_until) > now() + interval '300 seconds'"
        #expect(try await h.count(leaseSQL, [Array(ids.dropFirst())]) == 2)
        #expect(try await h.count(leaseSQL, [[held]]) == 0)

        timer.cancel()
        letGo.yield()
        try await holder.value
        // Once the row is free, the next heartbeat renews it too.
        let again = try await store.renewLeases(worker: "hb-w", jobs: ids, lease: .seconds(600))
        #expect(again.filter(\.owned).count == 3)
        #expect(try await h.count(leaseSQL, [ids]) == 3)
        // A job the worker no longer owns is reported as lost.
        _ = try await postgres.query("UPDATE sluice.jobs SET lease_owner = 'someone-else' WHERE id = $1", [held])
        let lost = try await store.renewLeases(worker: "hb-w", jobs: ids, lease: .seconds(600))
        #expect(lost.first { $0.jobID == held }?.owned == false)
        #expect(lost.filter(\.owned).count == 2)
    }
}
