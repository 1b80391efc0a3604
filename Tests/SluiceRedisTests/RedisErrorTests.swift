import Testing

@testable import SluiceRedis
import SluiceSupport

/// The error pattern (docs/ARCHITECTURE.md, "Errors"): codes compare by value, `description`
/// is redacted, `debugDescription` carries the detail.
@Suite("RedisError", .redisKeys)
struct RedisErrorTests {
    @Test func codesCompareByValue() {
        var error = RedisError(code: .server, message: "WRONGTYPE Operation against a key holding the wrong kind of value",
                               command: "LPUSH", server: "127.0.0.1:6379", serverErrorPrefix: "WRONGTYPE")
        error.notSent = true
        #expect(error.code == .server)
        #expect(error.code != .protocolError)
        #expect(Set([RedisError.Code.timeout, .timeout, .cancelled]).count == 2)
        #expect(error.description
            == "RedisError.server: WRONGTYPE Operation against a key holding the wrong kind of value command=LPUSH server=127.0.0.1:6379")
        let debug = String(reflecting: error)
        #expect(debug.hasPrefix("RedisError(code: server, message: \"WRONGTYPE "))
        #expect(debug.contains(#"serverErrorPrefix: "WRONGTYPE""#))
        #expect(debug.contains("notSent: true"))
    }

    @Test func commandArgumentsAreInNeitherDescription() async throws {
        let connection = try await TestRedis.connect()
        let key = TestRedis.prefix() + "list"
        _ = try await connection.command(["SET", key, "value-Secret-1"])
        let error = await #expect(throws: RedisError.self) {
            try await connection.command(["LPUSH", key, "value-Secret-2"])
        }
        _ = try await connection.command(["DEL", key])
        await connection.close()
        let thrown = try #require(error)
        #expect(thrown.code == .server)
        #expect(String(reflecting: thrown).contains(#"serverErrorPrefix: "WRONGTYPE""#))
        #expect(String(reflecting: thrown).contains(#"command: "LPUSH""#))
        for text in [String(describing: thrown), String(reflecting: thrown)] {
            #expect(!text.contains("value-Secret"))
            #expect(!text.contains(key))
        }
    }

    @Test func authPasswordIsInNeitherDescription() async throws {
        let secret = "auth-Pw-\(Int.random(in: 1000...9999))"
        // The test server has no password: AUTH fails (ERR … without any password configured).
        var configuration = try TestRedis.configuration()
        configuration.password = .init(secret)
        let refusedAuth = await #expect(throws: RedisError.self) {
            try await RedisConnection.connect(configuration: configuration, logger: TestRedis.logger)
        }
        #expect(refusedAuth?.code == .authenticationFailed)
        #expect(refusedAuth.map { String(reflecting: $0).contains(#"command: "AUTH""#) } == true)
        // Nothing listening; and a URL that does not parse.
        configuration.port = 1
        let refused = await #expect(throws: RedisError.self) {
            try await RedisConnection.connect(configuration: configuration, logger: TestRedis.logger)
        }
        #expect(refused?.code == .connectionFailed)
        let badURL = #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://:\(secret)@host:notaport") }
        #expect(badURL?.code == .invalidURL)
        for error in [refusedAuth, refused, badURL] {
            let thrown = try #require(error)
            #expect(!String(describing: thrown).contains(secret), "\(thrown)")
            #expect(!String(reflecting: thrown).contains(secret), "\(String(reflecting: thrown))")
        }
    }
}
