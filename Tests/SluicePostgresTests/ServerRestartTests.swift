import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import SluicePostgres

/// A private PostgreSQL cluster (own data directory and port) so restarting it disturbs no
/// other test. Needs root (to run initdb as `postgres`, like scripts/lib-services.sh).
final class PrivateCluster: Sendable {
    let directory: String
    let port: Int
    let bin: String

    init() throws {
        bin = ProcessInfo.processInfo.environment["PG_BIN"]
            ?? (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))
                .flatMap { $0.sorted().last.map { "/usr/lib/postgresql/\($0)/bin" } }
            ?? "/usr/lib/postgresql/15/bin"
        directory = NSTemporaryDirectory() + "/" + TestDatabase.uniqueName("sluice-pg-private")
        port = try Self.freePort()
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        try Self.shell("chown -R postgres:postgres '\(directory)' && chmod 700 '\(directory)/data'")
        try asPostgres("'\(bin)/initdb' -D '\(directory)/data' -U postgres -A trust -E UTF8 --locale=C.UTF-8 >'\(directory)/initdb.log' 2>&1")
        try start()
    }

    var url: String { "postgres://postgres@127.0.0.1:\(port)/postgres" }

    func start() throws {
        try asPostgres(
            "'\(bin)/pg_ctl' -D '\(directory)/data' -l '\(directory)/pg.log' -w -t 60 "
                + "-o \"-p \(port) -k '\(directory)' -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null")
    }

    func restart() throws {
        try asPostgres("'\(bin)/pg_ctl' -D '\(directory)/data' -l '\(directory)/pg.log' -w -t 60 -m fast restart >/dev/null")
    }

    func destroy() {
        try? asPostgres("'\(bin)/pg_ctl' -D '\(directory)/data' -m immediate stop >/dev/null 2>&1")
        try? FileManager.default.removeItem(atPath: directory)
    }

    func asPostgres(_ command: String) throws {
        try Self.shell("su postgres -s /bin/sh -c \(Self.singleQuoted(command))")
    }

    static func singleQuoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    struct CommandFailed: Error, CustomStringConvertible {
        let command: String
        let status: Int32
        var description: String { "command failed (\(status)): \(command) — the restart test needs root and PostgreSQL binaries" }
    }

    /// Runs `/bin/sh -c command` with posix_spawn + waitpid. (Foundation's `Process` never
    /// returns for `pg_ctl start`: the daemonised postmaster inherits its monitoring fd.)
    static func shell(_ command: String) throws {
        var pid: pid_t = 0
        let args: [UnsafeMutablePointer<CChar>?] = ["/bin/sh", "-c", command].map { (s: String) in s.withCString { strdup($0) } }
        defer { args.forEach { free($0) } }
        let argv = args + [nil]
        let spawned = argv.withUnsafeBufferPointer { posix_spawn(&pid, "/bin/sh", nil, nil, UnsafeMutablePointer(mutating: $0.baseAddress!), environ) }
        guard spawned == 0 else { throw CommandFailed(command: command, status: spawned) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitCode = (status >> 8) & 0xff
        guard status & 0x7f == 0, exitCode == 0 else { throw CommandFailed(command: command, status: status) }
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
        guard bound else { throw CommandFailed(command: "bind(127.0.0.1:0)", status: errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

@Suite(.serialized) struct ServerRestartTests {
    @Test(.timeLimit(.minutes(1))) func poolAndListenerRecoverAfterAFullServerRestart() async throws {
        let cluster = try PrivateCluster()
        defer { cluster.destroy() }
        let client = PostgresClient(
            configuration: try PostgresConfiguration(url: cluster.url), pool: .init(maxConnections: 3), logger: TestDatabase.logger)
        // Fill the pool with idle connections and start a listener.
        async let a = client.query("SELECT pg_backend_pid() FROM pg_sleep(0.05)")
        async let b = client.query("SELECT pg_backend_pid() FROM pg_sleep(0.05)")
        _ = try await (a, b)
        #expect(client.statistics.idle == 2)
        let stream = try await client.startListening(["restart_test"])
        var events = stream.makeAsyncIterator()

        try cluster.restart()

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
        await client.shutdown()
    }
}
