import SluiceTestScope
import Testing

@testable import SluiceRedis

@Suite("Lua scripts", .redisKeys)
struct RedisScriptTests {
    @Test func localSHA1MatchesKnownVectors() {
        #expect(SHA1.hexDigest("".utf8) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(SHA1.hexDigest("abc".utf8) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(SHA1.hexDigest("The quick brown fox jumps over the lazy dog".utf8) == "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12")
        #expect(
            SHA1.hexDigest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
                == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(SHA1.hexDigest([UInt8](repeating: 0x61, count: 1_000_000)) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test func localSHA1MatchesScriptLoad() async throws {
        let redis = try await TestRedis.connect()
        for source in ["return 1", "return KEYS[1] .. ARGV[1] -- héllo ✓", String(repeating: "-- padding to several blocks\n", count: 20) + "return 2"] {
            let script = RedisScript(source)
            #expect(try await redis.command(["SCRIPT", "LOAD", source]).string == script.sha1)
        }
    }

    static let echo = RedisScript("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")

    @Test func evalPassesKeysAndArgs() async throws {
        let redis = try await TestRedis.connect()
        let p = TestRedis.prefix()
        let reply = try await redis.eval(Self.echo, keys: [p + "{k}"], args: ["a\r\nb", "41"])
        #expect(reply == .array([.bulk(Array((p + "{k}").utf8)), .bulk(Array("a\r\nb".utf8)), .integer(42)]))
    }

    @Test func scriptErrorsAreThrownAsServerErrors() async throws {
        let redis = try await TestRedis.connect()
        let failing = RedisScript("return redis.error_reply('MYERR budget exhausted')")
        do {
            _ = try await redis.eval(failing, keys: [], args: [])
            Issue.record("expected a server error")
        } catch {
            #expect(error.code == .server)
            #expect(error.serverErrorPrefix == "MYERR")
            #expect(error.message.contains("budget exhausted"))
        }
        #expect(await redis.isOpen)
    }

    /// A script reading the server clock with redis.call('TIME') (the rate limiter's technique).
    @Test func scriptUsingServerTime() async throws {
        let redis = try await TestRedis.connect()
        let p = TestRedis.prefix()
        let stamp = RedisScript(
            """
            local t = redis.call('TIME')
            local micros = tonumber(t[1]) * 1000000 + tonumber(t[2])
            redis.call('SET', KEYS[1], micros, 'PX', 60000)
            return {tonumber(t[1]), micros}
            """)
        let before = try #require(try await redis.command(["TIME"]).array?[0].int)
        let reply = try #require(try await redis.eval(stamp, keys: [p + "{tb}:ts"], args: []).array)
        let after = try #require(try await redis.command(["TIME"]).array?[0].int)
        let seconds = try #require(reply[0].int)
        #expect(seconds >= before && seconds <= after)
        #expect(try await redis.command(["GET", p + "{tb}:ts"]).int == reply[1].int)
        #expect(try await redis.command(["PTTL", p + "{tb}:ts"]).int.map { $0 > 0 && $0 <= 60000 } == true)
    }

    /// EVALSHA on a server that has never seen the script, and again after SCRIPT FLUSH (on a
    /// private server: flushing the shared one would disturb other tests).
    @Test func noscriptIsReloadedTransparently() async throws {
        let server = try await RedisServerProcess.started()
        let redis = try await TestRedis.connect(configuration: server.configuration)
        let counter = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try await redis.command(["SCRIPT", "EXISTS", counter.sha1]) == .array([.integer(0)]))
        #expect(try await redis.eval(counter, keys: ["c"], args: ["5"]) == .integer(5))
        #expect(try await redis.command(["SCRIPT", "EXISTS", counter.sha1]) == .array([.integer(1)]))
        #expect(try await redis.eval(counter, keys: ["c"], args: ["5"]) == .integer(10))
        #expect(try await redis.command(["SCRIPT", "FLUSH"]) == .status("OK"))
        #expect(try await redis.command(["SCRIPT", "EXISTS", counter.sha1]) == .array([.integer(0)]))
        // Exactly one increment per eval, even across the reload.
        #expect(try await redis.eval(counter, keys: ["c"], args: ["5"]) == .integer(15))
        #expect(try await redis.command(["SCRIPT", "EXISTS", counter.sha1]) == .array([.integer(1)]))

        // Same through a RedisClient.
        let client = try TestRedis.client(server.configuration)
        _ = try await client.command(["SCRIPT", "FLUSH"])
        #expect(try await client.eval(counter, keys: ["c"], args: ["1"]) == .integer(16))
    }

    @Test func syntaxErrorInScriptIsReportedNotLooped() async throws {
        let server = try await RedisServerProcess.started()
        let redis = try await TestRedis.connect(configuration: server.configuration)
        do {
            _ = try await redis.eval(RedisScript("return +"), keys: [], args: [])
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .server)
            #expect(error.command == "SCRIPT")
        }
        #expect(await redis.isOpen)
    }
}
