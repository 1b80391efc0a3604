import Foundation
import InMemoryLogging
import Logging
import Sluice
import SluicePostgres
import SluiceProviders
import SluiceTestSupport
import Testing

@testable import SluiceWorker

/// Database errors in the worker's loops: those of an unreachable or restarting database are
/// warnings; any other SQLSTATE (a deadlock, a constraint violation, …) is logged at error
/// level and counted, and the loop carries on.
@Suite("Worker: unexpected database errors are counted and logged as errors", .workerDatabase)
struct WorkerDatabaseErrorTests {
    @Test func sqlStatesOfAnUnreachableDatabaseAreExpectedAndOthersAreNot() {
        for state in [nil, "08006", "08001", "57P01", "57P02", "57P03", "53300"] {
            #expect(DatabaseErrorMonitor.isExpected(sqlState: state), "\(state ?? "nil")")
        }
        for state in ["40P01", "40001", "23505", "42883", "XX000", "57014", "SL001"] {
            #expect(!DatabaseErrorMonitor.isExpected(sqlState: state), "\(state)")
        }
    }

    @Test func aDeadlockedHeartbeatIsCountedAndLoggedAtErrorLevel() async throws {
        let h = try WorkerHarness.current
        // Every heartbeat now fails the way a deadlock victim does.
        _ = try await h.postgres.query("""
            CREATE OR REPLACE FUNCTION sluice.renew_leases(p_worker text, p_ids uuid[], p_lease interval)
            RETURNS TABLE (id uuid, owned boolean, cancel_requested boolean) LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'deadlock detected (raised by the test)' USING ERRCODE = 'deadlock_detected';
            END
            $$
            """)
        let id = try await h.client.enqueue(echo("acme", "slow", metadata: #"{"echo_delay_ms":1500}"#)).id
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "worker") { _ in logs }
        logger.logLevel = .info
        let echo = EchoProvider(priceTable: try PriceTable(logger: h.logger))
        // Heartbeats every 300 ms while the 1.5 s job runs (the lease, 2 s, outlives them).
        let worker = try Worker(configuration: WorkerHarness.testConfiguration(), postgres: h.postgres,
                                providers: { $0 == "echo" ? echo : nil }, logger: logger)
        let job = try await h.withWorkers([worker]) {
            try await h.client.wait(for: id, timeout: .seconds(20))
        }
        // The heartbeat failures did not stop the worker: the job finished.
        #expect(job.state == .succeeded)
        let deadlocks = worker.unexpectedDatabaseErrors["40P01"] ?? 0
        #expect(deadlocks >= 1)
        #expect(worker.unexpectedDatabaseErrors.keys.sorted() == ["40P01"])
        let errors = logs.entries.filter { $0.level == .error && $0.metadata["sqlstate"] == "40P01" }
        #expect(errors.count == deadlocks)
        #expect(errors.allSatisfy { $0.metadata["operation"] == "heartbeat" })
        #expect(errors.first?.message.description.hasPrefix("heartbeat failed") == true)
    }

    @Test func aLostConnectionIsAWarningAndNotCounted() async throws {
        let h = try WorkerHarness.current
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "worker") { _ in logs }
        logger.logLevel = .info
        let monitor = DatabaseErrorMonitor(logger: logger)
        // A statement the server ends by terminating its backend: class 57P01 (admin shutdown).
        let failure = await #expect(throws: PostgresError.self) {
            try await h.postgres.withConnection { connection in
                _ = try await connection.query("SELECT pg_terminate_backend(pg_backend_pid())")
            }
        }
        monitor.record(try #require(failure), "claim failed", operation: "claim")
        #expect(monitor.unexpected.isEmpty)
        #expect(logs.entries.map(\.level) == [.warning])
    }
}
