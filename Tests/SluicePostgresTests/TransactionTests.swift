import Foundation
import SluicePostgresTestSupport
import SluiceSupport
import Testing

@testable import SluicePostgres

@Suite(.temporaryDatabase(sharedBySuite: true)) struct TransactionTests {
    func count(_ c: PostgresConnection) async throws -> Int {
        try #require(try await c.query("SELECT count(*) FROM t").first).decode(Int.self, at: 0)
    }

    @Test func commitsOnSuccess() async throws {
        try await TestDatabase.withSchema { c, _ in
            try await c.execute("CREATE TABLE t (v int)")
            let value = try await c.withTransaction { tx in
                _ = try await tx.query("INSERT INTO t VALUES (1), (2)")
                return 42
            }
            #expect(value == 42)
            #expect(try await count(c) == 2)
        }
    }

    struct Boom: Error {}

    @Test func rollsBackWhenBodyThrows() async throws {
        try await TestDatabase.withSchema { c, _ in
            try await c.execute("CREATE TABLE t (v int)")
            await #expect(throws: Boom.self) {
                try await c.withTransaction { tx in
                    _ = try await tx.query("INSERT INTO t VALUES (1)")
                    throw Boom()
                }
            }
            #expect(try await count(c) == 0)
        }
    }

    @Test func rollsBackWhenSwallowedStatementErrorAbortedIt() async throws {
        try await TestDatabase.withSchema { c, _ in
            try await c.execute("CREATE TABLE t (v int PRIMARY KEY)")
            await #expect(throws: PostgresError.self) {
                try await c.withTransaction { tx in
                    _ = try await tx.query("INSERT INTO t VALUES (1)")
                    _ = try? await tx.query("INSERT INTO t VALUES (1)")  // 23505, swallowed
                }
            }
            #expect(try await count(c) == 0)
        }
    }

    @Test func nestedTransactionsUseSavepoints() async throws {
        try await TestDatabase.withSchema { c, _ in
            try await c.execute("CREATE TABLE t (v int)")
            try await c.withTransaction { tx in
                _ = try await tx.query("INSERT INTO t VALUES (1)")
                try? await tx.withTransaction { inner in
                    _ = try await inner.query("INSERT INTO t VALUES (2)")
                    throw Boom()
                }
                try await tx.withTransaction { inner in
                    _ = try await inner.query("INSERT INTO t VALUES (3)")
                }
            }
            let values = try await c.query("SELECT v FROM t ORDER BY v").map { try $0.decode(Int.self, at: 0) }
            #expect(values == [1, 3])
        }
    }

    @Test func rollsBackWhenTaskIsCancelled() async throws {
        try await TestDatabase.withSchema { c, _ in
            try await c.execute("CREATE TABLE t (v int)")
            let started = AsyncStream<Void>.makeStream()
            let task = Task {
                try await c.withTransaction { tx in
                    _ = try await tx.query("INSERT INTO t VALUES (1)")
                    started.continuation.yield()
                    _ = try await tx.query("SELECT pg_sleep(10)")
                }
            }
            var iterator = started.stream.makeAsyncIterator()
            await iterator.next()
            try await Task.sleep(for: .milliseconds(100))
            task.cancel()
            let result = await task.result
            #expect(throws: PostgresError.self) { try result.get() }
            #expect(try await count(c) == 0)
            let status = try await c.query("SELECT 1")
            #expect(status.rows.count == 1)
        }
    }

    /// PostgreSQL ignores a cancel that reaches a backend still reading its command, so a
    /// cancel sent just after the statement (before the backend read it: a loaded machine) was
    /// lost and the statement ran to its end (a 60 s sleep in a CI run). Made certain here by
    /// stopping the backend (SIGSTOP) before the statement is sent: the cancel is delivered
    /// when it resumes, while it reads the command. The connection sends the cancel again while
    /// the same statement is in flight, so the 8 s sleep still ends within seconds.
    @Test func aCancelTheServerIgnoredIsSentAgain() async throws {
        let c = try await TestDatabase.connect()
        let pid = pid_t(c.backendPID)
        #expect(pid > 0)
        try #require(kill(pid, SIGSTOP) == 0, "the tests must be able to signal the PostgreSQL backend (run as root)")
        var resumed = false
        defer { if !resumed { kill(pid, SIGCONT) } }
        let task = Task { try await c.query("SELECT pg_sleep(8)", []) }
        // Until the statement is sent (it waits in the stopped backend's socket buffer).
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while !c.shared.withLock({ $0.inFlight }) && clock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(c.shared.withLock { $0.inFlight })
        task.cancel()
        try await Task.sleep(for: .milliseconds(300))
        let resumedAt = clock.now
        kill(pid, SIGCONT)
        resumed = true
        let result = await task.result
        let took = clock.now - resumedAt
        guard case .failure(let error as PostgresError) = result else {
            Issue.record("the statement was not cancelled: \(result)")
            return
        }
        #expect(error.code == .cancelled)
        #expect(error.sqlState == "57014")
        #expect(took < .seconds(5), "the sleep ran on after its cancel for \(took)")
        #expect(try await c.query("SELECT 7").first?.decode(Int.self, at: 0) == 7)
        await c.close()
    }

    @Test func cancelledQueryReturnsPromptlyAndConnectionStillWorks() async throws {
        let c = try await TestDatabase.connect()
        let clock = ContinuousClock()
        let start = clock.now
        let marker = UUID().uuidString
        let sql = "SELECT pg_sleep(10) /* \(marker) */"
        let task = Task { try await c.query(sql, []) }
        // Cancel once the server is running it (under load a fixed delay may cancel the query
        // before it was sent, which is a different path: no server error).
        let observer = try await TestDatabase.connect()
        for _ in 0..<200 {
            let active = try await observer.query(
                "SELECT count(*)::int FROM pg_stat_activity WHERE query = $1 AND state = 'active'", [sql])
            if try active.first?.decode(Int.self, at: 0) == 1 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let cancelledAt = clock.now
        task.cancel()
        let error = await #expect(throws: PostgresError.self) { try await task.value }
        #expect(error?.code == .cancelled)
        #expect(error?.sqlState == "57014")
        // pg_sleep(10) was running for a moment at most when cancelled: 5 s after the cancel it
        // would still be sleeping unless the server cancelled it.
        #expect(clock.now - cancelledAt < .seconds(5), "the sleep was not cancelled on the server")
        #expect(clock.now - start < .seconds(9.5))
        #expect(try await c.query("SELECT 7").first?.decode(Int.self, at: 0) == 7)
        #expect(await !c.isClosed)
        await c.close()
        #expect(await c.isClosed)
        let closedError = await #expect(throws: PostgresError.self) { try await c.query("SELECT 1") }
        #expect(closedError?.code == .connectionClosed)
    }

    @Test func alreadyCancelledTaskDoesNotSend() async throws {
        let c = try await TestDatabase.connect()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await c.query("SELECT 1")
        }
        let error = await #expect(throws: PostgresError.self) { try await task.value }
        #expect(error?.code == .cancelled)
        #expect(try await c.query("SELECT 1").rows.count == 1)
    }
}
