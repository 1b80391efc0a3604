import SluiceTestScope
import Testing

@testable import SluiceRedis

@Suite("AUTH and secret redaction (private redis-server)", .redisKeys)
struct RedisAuthTests {
    @Test func passwordAndACLUser() async throws {
        let password = "s3cret-Pass-\(Int.random(in: 1000...9999))"
        let server = try await RedisServerProcess.started(extraArguments: ["--requirepass", password])

        var good = try RedisConfiguration(url: "redis://:\(password)@127.0.0.1:\(server.port)")
        good.commandTimeout = .seconds(5)
        let redis = try await TestRedis.connect(configuration: good)
        #expect(try await redis.command(["PING"]) == .status("PONG"))
        #expect(try await redis.command(["ACL", "WHOAMI"]).string == "default")

        // Redis 6 ACL user: AUTH username password.
        _ = try await redis.command(["ACL", "SETUSER", "alice", "on", ">alice-pw-1", "~*", "&*", "+@all"])
        let alice = try await TestRedis.connect(
            configuration: try RedisConfiguration(url: "redis://alice:alice-pw-1@127.0.0.1:\(server.port)"))
        #expect(try await alice.command(["ACL", "WHOAMI"]).string == "alice")

        // No password: the server refuses commands.
        let anonymous = try await TestRedis.connect(configuration: server.configuration)
        do {
            _ = try await anonymous.command(["GET", "x"])
            Issue.record("expected NOAUTH")
        } catch {
            #expect(error.code == .server)
            #expect(error.serverErrorPrefix == "NOAUTH")
        }
    }

    @Test func wrongPasswordIsRedactedInErrors() async throws {
        let server = try await RedisServerProcess.started(extraArguments: ["--requirepass", "the-right-one"])
        for url in ["redis://:wrong-Pw-123@127.0.0.1:\(server.port)", "redis://bob:wrong-Pw-123@127.0.0.1:\(server.port)"] {
            do {
                _ = try await RedisConnection.connect(configuration: try RedisConfiguration(url: url), logger: TestRedis.logger)
                Issue.record("expected an authentication failure")
            } catch {
                #expect(error.code == .authenticationFailed)
                #expect(error.serverErrorPrefix == "WRONGPASS")
                for text in [error.description, error.message, String(reflecting: error), "\(error)"] {
                    #expect(!text.contains("wrong-Pw-123"))
                    #expect(!text.contains("the-right-one"))
                }
            }
        }
        // Through the pool too.
        let client = try TestRedis.client(try RedisConfiguration(url: "redis://:wrong-Pw-123@127.0.0.1:\(server.port)"))
        do {
            _ = try await client.command(["PING"])
            Issue.record("expected an authentication failure")
        } catch {
            #expect(error.code == .authenticationFailed)
            #expect(!String(reflecting: error).contains("wrong-Pw-123"))
        }
    }
}
