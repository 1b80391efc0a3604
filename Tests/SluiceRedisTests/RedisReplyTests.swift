import SluiceTestScope
import Testing

@testable import SluiceRedis

@Suite("Replies, binary safety, errors and pipelining", .redisKeys)
struct RedisReplyTests {
    @Test func scalarReplyTypes() async throws {
        let redis = try await TestRedis.connect()
        let p = TestRedis.prefix()
        #expect(try await redis.command(["PING"]) == .status("PONG"))
        #expect(try await redis.command(["SET", p + "s", "hello"]) == .status("OK"))
        #expect(try await redis.command(["GET", p + "s"]) == .bulk(Array("hello".utf8)))
        #expect(try await redis.command(["GET", p + "s"]).string == "hello")
        #expect(try await redis.command(["GET", p + "missing"]) == .null)
        #expect(try await redis.command(["INCRBY", p + "n", "41"]) == .integer(41))
        #expect(try await redis.command(["INCR", p + "n"]).int == 42)
        #expect(try await redis.command(["GET", p + "n"]).int == 42)  // counters come back as bulk strings
        #expect(try await redis.command(["INCRBY", p + "neg", "-9223372036854775807"]) == .integer(-9_223_372_036_854_775_807))
        #expect(try await redis.command(["LRANGE", p + "missing", "0", "-1"]) == .array([]))
        #expect(try await redis.command(["SET", p + "e", ""]) == .status("OK"))
        #expect(try await redis.command(["GET", p + "e"]) == .bulk([]))
        #expect(try await redis.command(["SET", p + "u", "héllo ✓ 🚦"]) == .status("OK"))
        #expect(try await redis.command(["GET", p + "u"]).string == "héllo ✓ 🚦")
    }

    @Test func nestedArrays() async throws {
        let redis = try await TestRedis.connect()
        let reply = try await redis.command(["EVAL", "return {1, {2, 'x', {}}, 'y', redis.status_reply('FINE')}", "0"])
        #expect(reply == .array([.integer(1), .array([.integer(2), .bulk(Array("x".utf8)), .array([])]), .bulk(Array("y".utf8)), .status("FINE")]))
        #expect(reply.array?.count == 4)
        #expect(reply.array?[1].array?[1].string == "x")
    }

    @Test func binarySafeKeysAndValues() async throws {
        let redis = try await TestRedis.connect()
        let key = Array(TestRedis.prefix().utf8) + [0, 13, 10, 0xff, 0x2a]
        var value: [UInt8] = [0, 13, 10, 0, 0xff, 0xfe, 0x24, 0x2d, 0x31, 13, 10, 0x2a, 0x33, 13, 10]  // \0 \r\n "$-1\r\n*3\r\n"
        value += (0...255).map { UInt8($0) }
        #expect(try await redis.command(bytes: [Array("SET".utf8), key, value]) == .status("OK"))
        let got = try await redis.command(bytes: [Array("GET".utf8), key])
        #expect(got == .bulk(value))
        #expect(got.string == nil)  // not valid UTF-8
        #expect(try await redis.command(bytes: [Array("STRLEN".utf8), key]) == .integer(Int64(value.count)))
        // A key that differs only after the NUL is a different key.
        #expect(try await redis.command(bytes: [Array("EXISTS".utf8), Array(key.dropLast())]) == .integer(0))
        // Strings with \r\n in them go through the String API unchanged too.
        let p = TestRedis.prefix()
        #expect(try await redis.command(["SET", p + "crlf", "a\r\nb\0c"]) == .status("OK"))
        #expect(try await redis.command(["GET", p + "crlf"]).string == "a\r\nb\0c")
        // A 1 MiB value.
        let big = [UInt8](repeating: 0x61, count: 1 << 20) + [0, 13, 10]
        _ = try await redis.command(bytes: [Array("SET".utf8), Array((p + "big").utf8), big])
        #expect(try await redis.command(["GET", p + "big"]) == .bulk(big))
    }

    @Test func errorRepliesAreThrownByCommandAndReturnedBySend() async throws {
        let redis = try await TestRedis.connect()
        let p = TestRedis.prefix()
        _ = try await redis.command(["RPUSH", p + "list", "a"])
        do {
            _ = try await redis.command(["GET", p + "list"])
            Issue.record("expected WRONGTYPE")
        } catch {
            #expect(error.code == .server)
            #expect(error.serverErrorPrefix == "WRONGTYPE")
            #expect(error.command == "GET")
            #expect(error.message.hasPrefix("WRONGTYPE"))
        }
        let sent = try await redis.send(["NOSUCHCOMMAND", "x"])
        #expect(sent.errorMessage?.hasPrefix("ERR unknown command") == true)
        // The connection is still perfectly usable after error replies.
        #expect(await redis.isOpen)
        #expect(try await redis.command(["LLEN", p + "list"]) == .integer(1))
    }

    @Test func pipelineOfAThousandKeepsOrder() async throws {
        let redis = try await TestRedis.connect()
        let p = TestRedis.prefix()
        let commands = (0..<1000).map { ["RPUSH", p + "list", "v\($0)"] }
        let replies = try await redis.pipeline(commands)
        #expect(replies == (1...1000).map { RedisValue.integer(Int64($0)) })
        let gets = try await redis.pipeline((0..<1000).map { ["LINDEX", p + "list", String($0)] })
        #expect(gets.map(\.string) == (0..<1000).map { "v\($0)" })
        #expect(try await redis.pipeline([]) == [])
    }

    @Test func pipelineKeepsErrorRepliesInPlace() async throws {
        let redis = try await TestRedis.connect()
        let p = TestRedis.prefix()
        let replies = try await redis.pipeline([["SET", p + "a", "1"], ["INCR", p + "a"], ["LPUSH", p + "a", "x"], ["GET", p + "a"]])
        #expect(replies.count == 4)
        #expect(replies[0] == .status("OK"))
        #expect(replies[1] == .integer(2))
        #expect(replies[2].errorMessage?.hasPrefix("WRONGTYPE") == true)
        #expect(replies[3].int == 2)
    }

    @Test func selectsTheConfiguredDatabase() async throws {
        var configuration = try TestRedis.configuration()
        configuration.database = 5
        let redis = try await TestRedis.connect(configuration: configuration)
        let info = try #require(try await redis.command(["CLIENT", "INFO"]).string)
        #expect(info.contains(" db=5 "))

        configuration.database = 100_000
        await #expect {
            _ = try await RedisConnection.connect(configuration: configuration, logger: TestRedis.logger)
        } throws: { error in
            (error as? RedisError)?.code == .server && (error as? RedisError)?.command == "SELECT"
        }
    }

    @Test func emptyCommandIsRejectedWithoutSending() async throws {
        let redis = try await TestRedis.connect()
        await #expect {
            _ = try await redis.command([])
        } throws: { error in
            (error as? RedisError)?.code == .invalidCommand
        }
        await #expect {
            _ = try await redis.pipeline([["PING"], []])
        } throws: { error in
            (error as? RedisError)?.code == .invalidCommand
        }
        #expect(await redis.isOpen)
        #expect(try await redis.command(["PING"]) == .status("PONG"))  // nothing half-sent
    }

    @Test func closedConnectionThrowsConnectionClosed() async throws {
        let redis = try await TestRedis.connect()
        await redis.close()
        #expect(await !redis.isOpen)
        await #expect {
            _ = try await redis.command(["PING"])
        } throws: { error in
            (error as? RedisError)?.code == .connectionClosed
        }
        await redis.close()  // idempotent
    }

    @Test func connectionRefusedIsConnectionFailed() async throws {
        let port = try TestRedis.freePort()
        await #expect {
            _ = try await RedisConnection.connect(configuration: RedisConfiguration(port: port), logger: TestRedis.logger)
        } throws: { error in
            (error as? RedisError)?.code == .connectionFailed
        }
    }
}
