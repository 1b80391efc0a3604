import Foundation
import SluiceSupport
import SluicePostgresTestSupport
import Testing

@testable import SluicePostgres

@Suite(.temporaryDatabase(sharedBySuite: true)) struct PoolTests {
    @Test func acquireTimesOutNamingThePoolSize() async throws {
        let client = try TestDatabase.client(maxConnections: 2, acquireTimeout: .milliseconds(200))
        let hold = AsyncStream<Void>.makeStream()
        let holders = AsyncStream<Void>.makeStream()
        let tasks = (0..<2).map { _ in
            Task {
                try await client.withConnection { _ in
                    holders.continuation.yield()
                    for await _ in hold.stream {}
                }
            }
        }
        var iterator = holders.stream.makeAsyncIterator()
        await iterator.next()
        await iterator.next()
        let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(error?.code == .poolTimeout)
        #expect(error?.message.contains("all 2 connections busy for 200 ms") == true)
        hold.continuation.finish()
        for task in tasks { try await task.value }
        #expect(try await client.query("SELECT 1").rows.count == 1)
        #expect(client.statistics.open <= 2)
        await client.shutdown()
        let closed = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(closed?.code == .poolClosed)
    }

    @Test func waitersAreServedWhenConnectionsComeBack() async throws {
        let client = try TestDatabase.client(maxConnections: 2)
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<20 {
                group.addTask {
                    try await client.query("SELECT $1::int8 FROM pg_sleep(0.01)", [i]).first!.decode(Int.self, at: 0)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.sorted() == Array(0..<20))
        #expect(client.statistics.open == 2)
    }

    @Test func waitersAreServedFirstInFirstOut() async throws {
        let client = try TestDatabase.client(maxConnections: 1)
        let order = Locked<[Int]>([])
        let release = AsyncStream<Void>.makeStream()
        let holding = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await client.withConnection { _ in
                holding.continuation.yield()
                for await _ in release.stream {}
            }
        }
        var iterator = holding.stream.makeAsyncIterator()
        await iterator.next()
        var waiters: [Task<Void, any Error>] = []
        for i in 0..<5 {
            waiters.append(Task { try await client.withConnection { _ in order.withLock { $0.append(i) } } })
            while client.statistics.waiting < i + 1 { try await Task.sleep(for: .milliseconds(5)) }
        }
        release.continuation.finish()
        try await holder.value
        for waiter in waiters { try await waiter.value }
        #expect(order.current == [0, 1, 2, 3, 4])
    }

    @Test func recoversAfterTerminateBackend() async throws {
        let client = try TestDatabase.client(maxConnections: 1)
        let pid = try await client.withConnection { $0.backendPID }
        let admin = try await TestDatabase.connect()
        let terminated = try await admin.query("SELECT pg_terminate_backend($1)", [Int32(pid)])
        #expect(try terminated.first?.decode(Bool.self, at: 0) == true)
        // Give the server a moment to close the socket, then the next query must just work.
        try await Task.sleep(for: .milliseconds(100))
        let newPID = try await client.query("SELECT pg_backend_pid()").first!.decode(Int32.self, at: 0)
        #expect(newPID != pid)
        // A session terminated while a statement runs: that call fails with connectionClosed,
        // the following one works.
        let busyPID = try await client.withConnection { $0.backendPID }
        let running = Task { try await client.query("SELECT pg_sleep(5)") }
        try await Task.sleep(for: .milliseconds(200))
        _ = try await admin.query("SELECT pg_terminate_backend($1)", [Int32(busyPID)])
        let error = await #expect(throws: PostgresError.self) { try await running.value }
        #expect(error?.code == .connectionClosed)
        #expect(try await client.query("SELECT 1").rows.count == 1)
        #expect(client.statistics.open == 1)
    }

    @Test func cancellationDoesNotLeakConnections() async throws {
        let client = try TestDatabase.client(maxConnections: 2, acquireTimeout: .seconds(30))
        var tasks: [Task<PostgresResult, any Error>] = []
        // 60 s: longer than the wait below for both sleeps to be seen (up to 10 s on a loaded
        // machine), so no sleep can end by itself before the cancel; a cancelled one ends at once.
        let marker = "pg_sleep(60) /* \(UUID().uuidString) */"
        // Two tasks run pg_sleep; only once both sleeps are running on the server (a cancel that
        // lands before the statement reaches the server cannot interrupt it), four more wait for
        // a connection. Known apart, the waiting ones are cancelled first, so none is handed a
        // freed connection in the instant of its own cancel (PostgreSQL ignores a cancel that
        // arrives before the statement starts; the connection now sends it again while the
        // statement is in flight: TransactionTests.aCancelTheServerIgnoredIsSentAgain).
        let observer = try await TestDatabase.connect()
        for _ in 0..<2 { tasks.append(Task { try await client.query("SELECT \(unescaped: marker)") }) }
        for _ in 0..<500 {
            let active = try await observer.query(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1", ["%" + marker + "%"])
            if try active.rows[0].decode(Int.self, at: 0) == 2 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        for _ in 0..<4 { tasks.append(Task { try await client.query("SELECT \(unescaped: marker)") }) }
        for _ in 0..<500 where client.statistics.waiting < 4 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(client.statistics.waiting == 4)
        for task in tasks.reversed() { task.cancel() }
        for task in tasks {
            let error = await #expect(throws: PostgresError.self) { try await task.value }
            #expect(error?.code == .cancelled)
        }
        let stats = client.statistics
        #expect(stats.waiting == 0)
        #expect(stats.open == stats.idle, "a connection was not returned: \(stats)")
        // Both connections are usable right away (no wait for the 10 s sleeps).
        async let a = client.query("SELECT 1")
        async let b = client.query("SELECT 2")
        _ = try await (a, b)
    }

    @Test func transactionLeftOpenByHandIsNotReused() async throws {
        let client = try TestDatabase.client(maxConnections: 1)
        struct Boom: Error {}
        let pid = try await client.withConnection { $0.backendPID }
        await #expect(throws: Boom.self) {
            try await client.withConnection { c in
                try await c.execute("BEGIN")
                throw Boom()
            }
        }
        let status = try await client.withConnection { c in
            (c.backendPID, try await c.query("SELECT now() = statement_timestamp()").first!.decode(Bool.self, at: 0))
        }
        #expect(status.0 != pid)
    }
}
