import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// Real child processes: `sluice worker` as operators run it (supervisor + worker processes).
@Suite("Worker processes", .serialized)
struct WorkerProcessTests {
    static var sluiceBinary: URL {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/sluice")
    }

    func startSupervisor(_ h: WorkerHarness, processes: Int, extra: [String] = []) throws -> Process {
        let process = Process()
        process.executableURL = Self.sluiceBinary
        process.arguments = ["worker", "--processes", "\(processes)", "--concurrency", "16", "--lease-seconds", "1.5",
                             "--poll-ms", "100", "--grace-seconds", "10", "--log-level", "warning"] + extra
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_DATABASE_URL"] = h.url
        environment["OPENAI_API_KEY"] = nil
        environment["ANTHROPIC_API_KEY"] = nil
        process.environment = environment
        // Keep the children off the test runner's pipes (an inherited pipe would keep
        // `swift test` waiting if a child outlived the test).
        process.standardOutput = FileHandle.nullDevice
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-worker-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        return process
    }

    /// Waits for the process to exit (SIGKILL after `seconds`); returns whether it exited by itself.
    func waitForExit(_ process: Process, seconds: Double = 30) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return false
        }
        return true
    }

    func workerPIDs(_ h: WorkerHarness, count: Int) async throws -> [Int32] {
        for _ in 0..<400 {
            let pids = try await h.postgres.query("SELECT pid FROM sluice.workers ORDER BY pid").rows.map { try $0.decode(Int32.self, at: 0) }
            if pids.count >= count { return pids }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw WorkerTestError("workers did not register")
    }

    struct WorkerTestError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    @Test func sigkillMidJobIsRescuedAndSucceedsExactlyOnce() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.sluiceBinary.path), "build the package first (scripts/test does)")
        let h = try await WorkerHarness.make()
        let supervisor = try startSupervisor(h, processes: 1)
        defer { if supervisor.isRunning { kill(supervisor.processIdentifier, SIGKILL) } }
        let victim = try await workerPIDs(h, count: 1)[0]
        let id = try await h.client.enqueue(echo("acme", "survive", metadata: #"{"echo_delay_ms":1500}"#)).id
        for _ in 0..<200 {
            if !(try await h.client.job(id)?.state != .running) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try await h.client.job(id)?.leaseOwner?.contains(":\(victim):") == true)
        kill(victim, SIGKILL)
        // The supervisor starts a new worker process, and some worker rescues the job.
        let job = try await h.client.wait(for: id, timeout: .seconds(30))
        #expect(job.state == .succeeded)
        #expect(job.attempt == 2)
        #expect(try await h.count("SELECT count(*) FROM sluice.results WHERE job_id = $1", [id]) == 1)
        let pids = try await workerPIDs(h, count: 1)
        #expect(pids.contains { $0 != victim })
        // SIGTERM: the supervisor forwards it, workers drain, everything exits 0.
        kill(supervisor.processIdentifier, SIGTERM)
        #expect(try await waitForExit(supervisor))
        #expect(supervisor.terminationStatus == 0)
        await h.close()
    }

    @Test func sigtermDrainsInFlightJobs() async throws {
        let h = try await WorkerHarness.make()
        let supervisor = try startSupervisor(h, processes: 2)
        defer { if supervisor.isRunning { kill(supervisor.processIdentifier, SIGKILL) } }
        _ = try await workerPIDs(h, count: 2)
        let ids = try await h.client.enqueue(batch: (0..<6).map { _ in echo("acme", "drain", metadata: #"{"echo_delay_ms":800}"#) }).map(\.id)
        for _ in 0..<200 {
            if !(try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'running'") < 6) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(supervisor.processIdentifier, SIGTERM)
        #expect(try await waitForExit(supervisor))
        #expect(supervisor.terminationStatus == 0)
        // Every in-flight job finished within the grace period; none was lost or left running.
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'succeeded'", [ids]) == 6)
        #expect(try await h.count("SELECT count(*) FROM sluice.workers") == 0)
        await h.close()
    }
}
