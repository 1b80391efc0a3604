import Foundation
import Logging
import Testing

@testable import SluiceRedis

#if canImport(Glibc)
import Glibc
#endif

/// Shared helpers for the SluiceRedis integration tests.
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

    static func connect(commandTimeout: Duration = .seconds(5)) async throws -> RedisConnection {
        try await RedisConnection.connect(configuration: configuration(commandTimeout: commandTimeout), logger: logger)
    }

    /// A key prefix unique to one test, so tests can share the server and run in parallel.
    static func prefix(_ name: String = #function) -> String {
        "sluice-test:redis:\(name.prefix(while: { $0 != "(" })):\(UUID().uuidString):"
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
        await observer.close()
    }

    /// Waits until the server reports the client named `name` (CLIENT SETNAME) running `command`.
    static func waitUntilServerRuns(_ command: String, clientName name: String) async throws {
        let observer = try await connect()
        try await eventually("client \(name) running \(command)") {
            let list = try await observer.command(["CLIENT", "LIST"]).string ?? ""
            return list.split(separator: "\n").contains { $0.contains(" name=\(name) ") && $0.contains("cmd=\(command)") }
        }
        await observer.close()
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

/// A private `redis-server` for tests that restart it, flush its scripts or change its
/// authentication — things that must not disturb the shared server other tests use.
final class PrivateRedisServer: @unchecked Sendable {
    let port: Int
    let extraArguments: [String]
    private var process: Process?

    init(extraArguments: [String] = []) async throws {
        self.port = try TestRedis.freePort()
        self.extraArguments = extraArguments
        try await start()
    }

    var configuration: RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: port, commandTimeout: .seconds(5))
    }

    func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
        ] + extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
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

    /// Kills the server with SIGKILL (a crash, as far as clients can tell). Not SIGTERM:
    /// children spawned from libdispatch worker threads inherit their blocked signal mask, so
    /// redis-server would never see a SIGTERM (and `waitUntilExit` would hang).
    func stop() {
        guard let process else { return }
        self.process = nil
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        for _ in 0..<500 where process.isRunning { usleep(10_000) }
    }

    deinit { stop() }
}
