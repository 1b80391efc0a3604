import Foundation
import SluicePostgresTestSupport
import SluiceTestScope
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import SluicePostgres

/// A private PostgreSQL cluster (own data directory and port) so restarting it disturbs no
/// other test. Needs root (to run initdb as `postgres`, like scripts/lib-services.sh). Owned by
/// the current test scope: stopped and deleted when the test ends, however it ends.
final class PrivateCluster: Sendable {
    let directory: String
    let port: Int
    let bin: String

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
        // Runs before the directory is removed (teardowns run last registered first).
        scope.onExit("private PostgreSQL cluster in \(directory)") { await cluster.stop() }
        try await shell("mkdir '\(directory)/data' && chown -R postgres:postgres '\(directory)' && chmod 700 '\(directory)/data'")
        try await cluster.asPostgres(
            "'\(bin)/initdb' -D '\(directory)/data' -U postgres -A trust -E UTF8 --locale=C.UTF-8 >'\(directory)/initdb.log' 2>&1")
        try await cluster.asPostgres(
            "'\(bin)/pg_ctl' -D '\(directory)/data' -l '\(directory)/pg.log' -w -t 60 "
                + "-o \"-p \(cluster.port) -k '\(directory)' -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null")
        return cluster
    }

    var url: String { "postgres://postgres@127.0.0.1:\(port)/postgres" }

    func restart() async throws {
        try await asPostgres("'\(bin)/pg_ctl' -D '\(directory)/data' -l '\(directory)/pg.log' -w -t 60 -m fast restart >/dev/null")
    }

    private func stop() async {
        guard FileManager.default.fileExists(atPath: directory + "/data/postmaster.pid") else { return }
        do {
            try await asPostgres("'\(bin)/pg_ctl' -D '\(directory)/data' -w -t 60 -m immediate stop >/dev/null 2>&1")
        } catch {
            Issue.record("cannot stop the private cluster in \(directory): \(error)")
        }
    }

    func asPostgres(_ command: String) async throws {
        try await Self.shell("su postgres -s /bin/sh -c \(Self.singleQuoted(command))")
    }

    static func singleQuoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    struct CommandFailed: Error, CustomStringConvertible {
        let command: String
        let status: String
        var description: String { "command failed (\(status)): \(command) — the restart test needs root and PostgreSQL binaries" }
    }

    /// Runs `/bin/sh -c command` to completion as a child of the test. (`pg_ctl start` returns
    /// while the postmaster it started runs on in a session of its own; ``stop()`` ends it.)
    static func shell(_ command: String) async throws {
        let result = try await ChildProcess.run("/bin/sh", ["-c", command])
        guard result.status == .exited(0) else {
            throw CommandFailed(command: command, status: "\(result.status)\(result.standardError.isEmpty ? "" : ": " + result.standardError)")
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw CommandFailed(command: "bind(127.0.0.1:0)", status: "errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
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
