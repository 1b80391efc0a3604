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
        self.port = try port ?? Self.freePort()
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
            if Self.accepts(port) { return }
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

    /// A loopback TCP port that was free a moment ago (bound to port 0, then released).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw Failure(description: "bind() failed: \(String(cString: strerror(errno)))") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on the loopback `port`.
    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
