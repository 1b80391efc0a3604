import Foundation
import Logging
import SluiceTestScope
import Synchronization
import Testing

@testable import SluiceRedis

#if canImport(Glibc)
import Glibc
#endif

/// Shared helpers for the SluiceRedis integration tests. Suites that talk to a server run with
/// `.redisKeys`: each test gets a key prefix of its own (so tests share the server and run in
/// parallel), its connections, clients and private servers are closed when it ends, and the keys
/// it left under its prefix are deleted.
enum TestRedis {
    static let logger: Logger = {
        var logger = Logger(label: "sluice.redis.tests")
        logger.logLevel = .error
        return logger
    }()

    /// The throwaway server started by scripts/test. Fails (never skips) if the variable is missing.
    static func configuration(commandTimeout: Duration = .seconds(5)) throws -> RedisConfiguration {
        let url = try #require(
            ProcessInfo.processInfo.environment["SLUICE_TEST_REDIS_URL"],
            "SLUICE_TEST_REDIS_URL is not set: run the tests with `scripts/test --filter SluiceRedisTests`"
        )
        var configuration = try RedisConfiguration(url: url)
        configuration.commandTimeout = commandTimeout
        return configuration
    }

    /// A connection to the shared server, closed when the test ends.
    static func connect(commandTimeout: Duration = .seconds(5)) async throws -> RedisConnection {
        try await connect(configuration: configuration(commandTimeout: commandTimeout))
    }

    /// A connection, closed when the test ends.
    static func connect(configuration: RedisConfiguration) async throws -> RedisConnection {
        let scope = try TestScope.required(for: "a Redis connection")
        let connection = try await RedisConnection.connect(configuration: configuration, logger: logger)
        scope.onExit("Redis connection") { await connection.close() }
        return connection
    }

    /// A pool (on the shared server unless `configuration` says otherwise), shut down when the
    /// test ends.
    static func client(_ configuration: RedisConfiguration? = nil, pool: RedisClient.Configuration = .init()) throws -> RedisClient {
        let scope = try TestScope.required(for: "a Redis client")
        let client = RedisClient(configuration: try configuration ?? self.configuration(), pool: pool, logger: logger)
        scope.onExit("Redis client") { await client.shutdown() }
        return client
    }

    /// A key prefix unique to one call, under the test's own prefix (whose keys are deleted when
    /// the test ends).
    static func prefix() -> String {
        guard let keys = RedisKeys.scoped else {
            Issue.record(RedisKeys.MissingTrait())
            return "sluice-test:redis:unscoped:\(UUID().uuidString):"
        }
        return keys.next()
    }

    /// Polls `condition` until it holds (or fails the test after `timeout`). Used instead of
    /// fixed sleeps so tests stay correct on a loaded 2-core machine.
    static func eventually(
        _ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("timed out waiting for: \(what)")
        throw CancellationError()
    }

    /// Waits until the server reports the client `id` blocked in `command` (e.g. "blpop").
    static func waitUntilServerRuns(_ command: String, clientID id: Int64) async throws {
        let observer = try await connect()
        try await eventually("client \(id) running \(command)") {
            let line = try await observer.command(["CLIENT", "LIST", "ID", String(id)]).string ?? ""
            return line.contains("cmd=\(command)")
        }
    }

    /// Waits until the server reports the client named `name` (CLIENT SETNAME) running `command`.
    static func waitUntilServerRuns(_ command: String, clientName name: String) async throws {
        let observer = try await connect()
        try await eventually("client \(name) running \(command)") {
            let list = try await observer.command(["CLIENT", "LIST"]).string ?? ""
            return list.split(separator: "\n").contains { $0.contains(" name=\(name) ") && $0.contains("cmd=\(command)") }
        }
    }

    /// A TCP port nothing listens on right now (bind to port 0, read it back, close).
    static func freePort() throws -> Int { try LoopbackPort.free() }
}

/// The key namespace of one test on the shared server: `sluice-test:redis:<test>:<uuid>:`.
final class RedisKeys: Sendable {
    @TaskLocal static var scoped: RedisKeys?

    let namespace: String
    private let counter = Mutex(0)

    init(test: String) {
        let name = test.prefix(while: { $0 != "(" }).filter { $0.isLetter || $0.isNumber }
        namespace = "sluice-test:redis:\(name):\(UUID().uuidString):"
    }

    struct MissingTrait: Error, CustomStringConvertible {
        var description: String { "no Redis key namespace: add .redisKeys to the test or its suite" }
    }

    func next() -> String {
        namespace + "\(counter.withLock { $0 += 1; return $0 }):"
    }

    /// Deletes every key under the namespace (SCAN, then UNLINK).
    func deleteKeys() async {
        do {
            let redis = try await RedisConnection.connect(configuration: TestRedis.configuration(), logger: TestRedis.logger)
            var cursor = "0"
            repeat {
                let reply = try await redis.command(["SCAN", cursor, "MATCH", namespace + "*", "COUNT", "1000"])
                guard let page = reply.array, page.count == 2, let next = page[0].string, let keys = page[1].array else { break }
                let names = keys.compactMap { key -> [UInt8]? in
                    if case .bulk(let bytes) = key { return bytes }
                    return nil
                }
                if !names.isEmpty { _ = try await redis.command(bytes: [Array("UNLINK".utf8)] + names) }
                cursor = next
            } while cursor != "0"
            await redis.close()
        } catch {
            Issue.record("cannot delete the test's Redis keys under \(namespace): \(error)")
        }
    }
}

/// Gives each test a ``TestScope`` and a ``RedisKeys`` namespace whose keys are deleted when
/// the test ends.
struct RedisKeysTrait: TestTrait, SuiteTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let keys = RedisKeys(test: test.name)
        try await withTestScope {
            TestScope.current?.onExit("Redis keys under \(keys.namespace)") { await keys.deleteKeys() }
            try await RedisKeys.$scoped.withValue(keys) { try await function() }
        }
    }
}

extension TestTrait where Self == RedisKeysTrait {
    static var redisKeys: Self { RedisKeysTrait() }
}

extension SuiteTrait where Self == RedisKeysTrait {
    static var redisKeys: Self { RedisKeysTrait() }
}

/// A private `redis-server` (``RedisServerProcess``) for tests that restart it, flush its
/// scripts or change its authentication, away from the shared server other tests use.
extension RedisServerProcess {
    /// A private server, started.
    static func started(extraArguments: [String] = []) async throws -> RedisServerProcess {
        let server = try RedisServerProcess(extraArguments: extraArguments)
        try await server.start()
        return server
    }

    var configuration: RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: port, commandTimeout: .seconds(5))
    }
}
