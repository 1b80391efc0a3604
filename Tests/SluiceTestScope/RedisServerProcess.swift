public import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A private `redis-server` on a loopback port, for tests that kill, restart or reconfigure it —
/// things that must not disturb the shared server other tests use. A child process of the test
/// (no persistence, no daemonizing); ``stop()`` kills it with SIGKILL, as a crash looks to
/// clients, and ``start()`` brings it back on the same port.
public final class RedisServerProcess: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The port it listens on (chosen free when the value was made, unless given).
    public let port: Int
    /// Passed to `redis-server` after the defaults (e.g. `["--requirepass", "…"]`).
    public let extraArguments: [String]
    private let process = Mutex<ChildProcess?>(nil)

    /// - Parameter port: nil picks a free loopback port now.
    public init(port: Int? = nil, extraArguments: [String] = []) throws {
        self.port = try port ?? LoopbackPort.free()
        self.extraArguments = extraArguments
    }

    /// `redis://127.0.0.1:<port>`.
    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Whether a server runs now (started and not stopped).
    public var isRunning: Bool { process.withLock { $0 != nil } }

    /// Starts the server and returns once it accepts TCP connections (at most 10 s).
    public func start() async throws {
        let child = try ChildProcess.spawn("/usr/bin/redis-server", [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
        ] + extraArguments, stopSignal: SIGKILL)
        process.withLock { $0 = child }
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while ContinuousClock.now < deadline {
            if LoopbackPort.accepts(port) { return }
            if child.exitStatus != nil { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        await stop()
        throw Failure(description: "redis-server on port \(port) did not start: \(child.standardError())")
    }

    /// Kills the server with SIGKILL and reaps it; nothing when it is not running.
    public func stop() async {
        guard let child = process.withLock({ process in defer { process = nil }; return process }) else { return }
        child.send(SIGKILL)
        _ = await child.waitForExit(timeout: .seconds(10))
    }
}
