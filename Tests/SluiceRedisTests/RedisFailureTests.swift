import Foundation
import SluiceTestScope
import Testing

@testable import SluiceRedis

@Suite("Timeouts, reconnects, cancellation", .redisKeys)
struct RedisFailureTests {
    @Test func commandTimeoutDiscardsTheConnection() async throws {
        let redis = try await TestRedis.connect(commandTimeout: .milliseconds(300))
        let p = TestRedis.prefix()
        do {
            _ = try await redis.command(["BLPOP", p + "never", "5"])
            Issue.record("expected a timeout")
        } catch {
            #expect(error.code == .timeout)
            #expect(error.command == "BLPOP")
        }
        #expect(await !redis.isOpen)
        await #expect {
            _ = try await redis.command(["PING"])
        } throws: { error in
            (error as? RedisError)?.code == .connectionClosed
        }
    }

    @Test func clientRecoversFromATimeout() async throws {
        // 1 s: the PING after the reconnect must fit too, also on a loaded machine.
        let client = try TestRedis.client(try TestRedis.configuration(commandTimeout: .seconds(1)), pool: .init(maxConnections: 1))
        let p = TestRedis.prefix()
        let firstID = try await client.command(["CLIENT", "ID"]).int
        await #expect {
            _ = try await client.command(["BLPOP", p + "never", "5"])
        } throws: { error in
            (error as? RedisError)?.code == .timeout
        }
        #expect(try await client.command(["PING"]) == .status("PONG"))
        #expect(try await client.command(["CLIENT", "ID"]).int != firstID)
        #expect(await client.statistics.open == 1)
    }

    @Test func clientRecoversFromClientKill() async throws {
        let client = try TestRedis.client(pool: .init(maxConnections: 1))
        let p = TestRedis.prefix()
        _ = try await client.command(["SET", p + "k", "1"])
        let id = try #require(try await client.command(["CLIENT", "ID"]).int)
        let killer = try await TestRedis.connect()
        #expect(try await killer.command(["CLIENT", "KILL", "ID", String(id)]) == .integer(1))
        // The pooled connection is dead; the next call transparently gets a fresh one.
        #expect(try await client.command(["INCR", p + "k"]) == .integer(2))
        #expect(try await client.command(["CLIENT", "ID"]).int != id)
    }

    @Test func killedConnectionReportsConnectionClosed() async throws {
        let redis = try await TestRedis.connect()
        let id = try #require(try await redis.command(["CLIENT", "ID"]).int)
        let killer = try await TestRedis.connect()
        _ = try await killer.command(["CLIENT", "KILL", "ID", String(id)])
        await #expect {
            _ = try await redis.command(["PING"])
        } throws: { error in
            (error as? RedisError)?.code == .connectionClosed
        }
        #expect(await !redis.isOpen)
    }

    @Test func clientRecoversFromServerRestart() async throws {
        let server = try await RedisServerProcess.started()
        // A generous acquire timeout: under load the reconnects after the restart can take more
        // than the default 2 s; what is tested is that stale connections are discarded.
        let client = try TestRedis.client(server.configuration, pool: .init(maxConnections: 4, acquireTimeout: .seconds(10)))
        // Open several pooled connections.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<8 { group.addTask { _ = try await client.command(["SET", "k\(i)", "v"]) } }
            try await group.waitForAll()
        }
        #expect(await client.statistics.open >= 1)

        await server.stop()
        await #expect {
            _ = try await client.command(["PING"])
        } throws: { error in
            (error as? RedisError)?.code == .connectionFailed
        }
        try await server.start()
        // Every stale connection is discarded before anything is written; the call succeeds.
        #expect(try await client.command(["SET", "after", "restart"]) == .status("OK"))
        #expect(try await client.command(["GET", "after"]).string == "restart")
        #expect(try await client.command(["DBSIZE"]) == .integer(1))  // the restart really wiped the data
    }

    @Test func cancelledBeforeSendingSendsNothing() async throws {
        let redis = try await TestRedis.connect()
        let p = TestRedis.prefix()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await redis.command(["INCR", p + "n"])
        }
        await #expect {
            _ = try await task.value
        } throws: { error in
            (error as? RedisError)?.code == .cancelled
        }
        #expect(try await redis.command(["GET", p + "n"]) == .null)  // never sent
        #expect(await redis.isOpen)
    }

    /// A command already on the wire runs to completion; its reply is returned and the
    /// connection stays usable (no half-read reply left behind).
    @Test func cancelledInFlightCompletesAndKeepsConnectionClean() async throws {
        let redis = try await TestRedis.connect()
        let p = TestRedis.prefix()
        let id = try #require(try await redis.command(["CLIENT", "ID"]).int)
        let task = Task { try await redis.command(["BLPOP", p + "list", "0.5"]) }
        try await TestRedis.waitUntilServerRuns("blpop", clientID: id)
        task.cancel()
        #expect(try await task.value == .null)  // BLPOP's own timeout reply
        #expect(await redis.isOpen)
        #expect(try await redis.command(["ECHO", "next"]).string == "next")
    }
}
