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
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
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

/// A private `redis-server` for tests that restart it, flush its scripts or change its
/// authentication — things that must not disturb the shared server other tests use. A child
/// process of the test, killed and reaped when the test ends.
final class PrivateRedisServer: Sendable {
    let port: Int
    let extraArguments: [String]
    private let process = Mutex<ChildProcess?>(nil)

    init(extraArguments: [String] = []) async throws {
        self.port = try TestRedis.freePort()
        self.extraArguments = extraArguments
        try await start()
    }

    var configuration: RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: port, commandTimeout: .seconds(5))
    }

    func start() async throws {
        let child = try ChildProcess.spawn("/usr/bin/redis-server", [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
        ] + extraArguments)
        process.withLock { $0 = child }
        // Ready when it accepts TCP connections (no AUTH is attempted by this configuration).
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while ContinuousClock.now < deadline {
            if let connection = try? await RedisConnection.connect(configuration: configuration, logger: TestRedis.logger) {
                await connection.close()
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("private redis-server on port \(port) did not start")
    }

    /// Kills the server with SIGKILL (a crash, as far as clients can tell) and reaps it.
    func stop() async {
        guard let child = process.withLock({ process in defer { process = nil }; return process }) else { return }
        child.send(SIGKILL)
        if await child.waitForExit(timeout: .seconds(10)) == nil {
            Issue.record("private redis-server on port \(port) survived SIGKILL")
        }
    }
}
