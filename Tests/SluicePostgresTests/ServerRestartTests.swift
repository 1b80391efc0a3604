import Foundation
import SluicePostgresTestSupport
import SluiceTestScope
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import SluicePostgres

/// A private PostgreSQL cluster (own data directory and port) so restarting it disturbs no
/// other test. Needs root (to run initdb and postgres as `postgres`, like
/// scripts/lib-services.sh). Owned by the current test scope: the postmaster runs in the
/// foreground as a child process of the test (not daemonised by pg_ctl), so it is stopped when
/// the test ends however it ends — even if the test runner dies — and the directory goes after.
final class PrivateCluster: Sendable {
    let directory: String
    let port: Int
    let bin: String
    private let postmaster = Mutex<ChildProcess?>(nil)

    private init(directory: String, port: Int, bin: String) {
        self.directory = directory
        self.port = port
        self.bin = bin
    }

    static func start() async throws -> PrivateCluster {
        let bin = ProcessInfo.processInfo.environment["PG_BIN"]
            ?? (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))
                .flatMap { $0.sorted().last.map { "/usr/lib/postgresql/\($0)/bin" } }
            ?? "/usr/lib/postgresql/15/bin"
        let scope = try TestScope.required(for: "a private PostgreSQL cluster")
        let directory = try scope.temporaryDirectory("sluice-pg-private")
        let cluster = PrivateCluster(directory: directory, port: try freePort(), bin: bin)
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: false)
        try await run("/bin/chown", ["-R", "postgres:postgres", directory])
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory + "/data")
        let (initdb, arguments) = asPostgres(bin + "/initdb", ["-D", directory + "/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"])
        try await run(initdb, arguments)
        try await cluster.startPostmaster()
        return cluster
    }

    var url: String { "postgres://postgres@127.0.0.1:\(port)/postgres" }

    /// A full restart, as `pg_ctl -m fast restart` does it: fast shutdown (SIGINT, every
    /// session disconnected), wait for the postmaster to exit, start a new one.
    func restart() async throws {
        if let old = postmaster.withLock({ $0 }) {
            old.send(SIGINT)
            guard await old.waitForExit(timeout: .seconds(60)) != nil else {
                throw CommandFailed(command: "postgres fast shutdown", status: "still running after 60 s")
            }
        }
        try await startPostmaster()
    }

    /// Starts `postgres` in the foreground and waits until it accepts connections. The scope
    /// stops it with SIGINT (fast shutdown).
    private func startPostmaster() async throws {
        let (executable, arguments) = Self.asPostgres(bin + "/postgres", [
            "-D", directory + "/data", "-p", "\(port)", "-k", directory,
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
        ])
        let child = try ChildProcess.spawn(executable, arguments, standardError: .capture, stopSignal: SIGINT)
        postmaster.withLock { $0 = child }
        let configuration = try PostgresConfiguration(url: url)
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while ContinuousClock.now < deadline {
            if let status = child.exitStatus {
                throw CommandFailed(command: "postgres", status: "\(status): \(child.standardError())")
            }
            if let connection = try? await PostgresConnection.connect(configuration: configuration, logger: TestDatabase.logger) {
                await connection.close()
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CommandFailed(command: "postgres", status: "not accepting connections after 60 s: \(child.standardError())")
    }

    /// `executable arguments` run as the `postgres` user: through setpriv, which also sets the
    /// parent-death signal again (changing the user clears it), else through su.
    static func asPostgres(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        if access("/usr/bin/setpriv", X_OK) == 0 {
            return ("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--pdeathsig", "TERM", "--", executable] + arguments)
        }
        let command = "exec " + ([executable] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return ("/bin/su", ["postgres", "-s", "/bin/sh", "-c", command])
    }

    struct CommandFailed: Error, CustomStringConvertible {
        let command: String
        let status: String
        var description: String { "command failed (\(status)): \(command) — the restart test needs root and PostgreSQL binaries" }
    }

    /// Runs a command to completion as a child of the test.
    static func run(_ executable: String, _ arguments: [String]) async throws {
        let result = try await ChildProcess.run(executable, arguments)
        guard result.status == .exited(0) else {
            throw CommandFailed(
                command: ([executable] + arguments).joined(separator: " "),
                status: "\(result.status)\(result.standardError.isEmpty ? "" : ": " + result.standardError)")
        }
    }

    static func freePort() throws -> Int { try LoopbackPort.free() }
}

@Suite(.serialized, .testScope) struct ServerRestartTests {
    @Test(.timeLimit(.minutes(1))) func poolAndListenerRecoverAfterAFullServerRestart() async throws {
        let cluster = try await PrivateCluster.start()
        let client = try TestScope.required(for: "the pool").adopt(PostgresClient(
            configuration: try PostgresConfiguration(url: cluster.url), pool: .init(maxConnections: 3), logger: TestDatabase.logger))
        // Fill the pool with idle connections and start a listener.
        async let a = client.query("SELECT pg_backend_pid() FROM pg_sleep(0.05)")
        async let b = client.query("SELECT pg_backend_pid() FROM pg_sleep(0.05)")
        _ = try await (a, b)
        #expect(client.statistics.idle == 2)
        let stream = try await client.startListening(["restart_test"])
        var events = stream.makeAsyncIterator()

        try await cluster.restart()

        // The first query after the restart succeeds: the dead idle connections are detected
        // before use and replaced.
        #expect(try await client.query("SELECT 41 + 1").first?.decode(Int.self, at: 0) == 42)
        #expect(try await client.query("SELECT 1", prepared: true).first?.decode(Int.self, at: 0) == 1)
        // The listener reconnects, says so, and delivers again.
        #expect(await events.next() == .reconnected)
        _ = try await client.query("NOTIFY restart_test, 'back'")
        guard case .notification(let n)? = await events.next() else {
            Issue.record("no notification after the restart")
            return
        }
        #expect(n.payload == "back")
    }
}
