import Logging
import ServiceLifecycle
import SluiceTestScope
import Testing

@testable import SluiceRedis

@Suite("RedisClient pool", .redisKeys)
struct RedisClientTests {
    @Test func twoHundredConcurrentIncrs() async throws {
        // A generous acquire timeout: 200 callers share 8 connections on a loaded 2-core machine.
        let client = try TestRedis.client(pool: .init(maxConnections: 8, acquireTimeout: .seconds(60)))
        let key = TestRedis.prefix() + "counter"
        try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<200 { group.addTask { try #require(try await client.command(["INCR", key]).int) } }
            var seen = Set<Int64>()
            for try await value in group { seen.insert(value) }
            #expect(seen == Set(1...200))  // every INCR applied exactly once
        }
        #expect(try await client.command(["GET", key]).int == 200)
        let stats = await client.statistics
        #expect(stats.open <= 8 && stats.open >= 1)
        #expect(stats.waiting == 0)
    }

    @Test func pipelineAndEvalThroughTheClient() async throws {
        let client = try TestRedis.client()
        let p = TestRedis.prefix()
        let replies = try await client.pipeline([["SET", p + "a", "1"], ["INCR", p + "a"], ["GET", p + "a"]])
        #expect(replies == [.status("OK"), .integer(2), .bulk(Array("2".utf8))])
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try await client.eval(script, keys: [p + "a"], args: ["3"]) == .integer(5))
        #expect(try await client.send(["BOGUS"]).errorMessage != nil)
    }

    @Test func withConnectionKeepsOneConnection() async throws {
        let client = try TestRedis.client()
        let p = TestRedis.prefix()
        let results = try await client.withConnection { connection in
            _ = try await connection.command(["MULTI"])
            _ = try await connection.command(["SET", p + "x", "1"])
            _ = try await connection.command(["INCR", p + "x"])
            return try await connection.command(["EXEC"])
        }
        #expect(results == .array([.status("OK"), .integer(2)]))
    }

    @Test func poolTimeoutWhenAllConnectionsAreBusy() async throws {
        let client = try TestRedis.client(pool: .init(maxConnections: 1, acquireTimeout: .milliseconds(200)))
        let p = TestRedis.prefix()
        // Hold the only connection in a blocking BLPOP for up to 3 s.
        let holder = Task { try await client.command(["BLPOP", p + "list", "3"]) }
        try await TestRedis.eventually("the holder leased the only connection") {
            let stats = await client.statistics
            return stats.open == 1 && stats.idle == 0
        }
        await #expect {
            _ = try await client.command(["PING"])
        } throws: { error in
            (error as? RedisError)?.code == .poolTimeout
        }
        // Release the holder by pushing from another connection; the pool then serves again.
        let other = try await TestRedis.connect()
        _ = try await other.command(["RPUSH", p + "list", "go"])
        #expect(try await holder.value.array?.last?.string == "go")
        #expect(try await client.command(["PING"]) == .status("PONG"))
    }

    @Test func waiterCancellationIsPrompt() async throws {
        let client = try TestRedis.client(pool: .init(maxConnections: 1, acquireTimeout: .seconds(30)))
        let p = TestRedis.prefix()
        let holder = Task { try await client.command(["BLPOP", p + "list", "5"]) }
        try await TestRedis.eventually("the holder leased the only connection") {
            let stats = await client.statistics
            return stats.open == 1 && stats.idle == 0
        }
        let waiter = Task { try await client.command(["PING"]) }
        try await TestRedis.eventually("one caller waiting") { await client.statistics.waiting == 1 }
        waiter.cancel()
        await #expect {
            _ = try await waiter.value
        } throws: { error in
            (error as? RedisError)?.code == .cancelled
        }
        #expect(await client.statistics.waiting == 0)
        let other = try await TestRedis.connect()
        _ = try await other.command(["RPUSH", p + "list", "go"])
        _ = try await holder.value
    }

    @Test func runReturnsOnGracefulShutdownAndClosesThePool() async throws {
        let client = try TestRedis.client()
        let group = ServiceGroup(services: [client], gracefulShutdownSignals: [], logger: TestRedis.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(try await client.command(["PING"]) == .status("PONG"))
            #expect(await client.statistics.open == 1)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(await client.statistics.open == 0)
        await #expect {
            _ = try await client.command(["PING"])
        } throws: { error in
            (error as? RedisError)?.code == .connectionClosed
        }
    }

    @Test func shutdownFailsWaitersAndClosesLeasedConnectionsOnReturn() async throws {
        // The holder blocks for 5 s so the waiter is still queued when shutdown comes, even on a
        // loaded machine; the command timeout must outlast it.
        var configuration = try TestRedis.configuration()
        configuration.commandTimeout = .seconds(15)
        let client = try TestRedis.client(configuration, pool: .init(maxConnections: 1, acquireTimeout: .seconds(30)))
        let p = TestRedis.prefix()
        let name = "holder-\(UInt32.random(in: 0...UInt32.max))"
        let holder = Task {
            try await client.withConnection { connection in
                _ = try await connection.command(["CLIENT", "SETNAME", name])
                return try await connection.command(["BLPOP", p + "list", "5"])
            }
        }
        try await TestRedis.waitUntilServerRuns("blpop", clientName: name)
        let waiter = Task { try await client.command(["PING"]) }
        try await TestRedis.eventually("one caller waiting") { await client.statistics.waiting == 1 }
        await client.shutdown()
        await #expect {
            _ = try await waiter.value
        } throws: { error in
            (error as? RedisError)?.code == .connectionClosed
        }
        #expect(try await holder.value == .null)  // the in-flight command still completes
        #expect(await client.statistics.open == 0)
    }
}
