import Foundation
import Sluice
import SluicePostgres
import SluiceTestScope
import SluiceTestSupport
import Testing

/// Real child processes: `sluice worker` as operators run it (supervisor + worker processes).
@Suite("Worker processes", .serialized, .workerDatabase)
struct WorkerProcessTests {
    static var sluiceBinary: URL {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/sluice")
    }

    /// `sluice worker` as a child process of the test: stopped (SIGTERM, then SIGKILL to its
    /// whole process group, worker processes included) and reaped when the test ends.
    func startSupervisor(_ h: WorkerHarness, processes: Int, extra: [String] = []) throws -> ChildProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_DATABASE_URL"] = h.url
        environment["OPENAI_API_KEY"] = nil
        environment["ANTHROPIC_API_KEY"] = nil
        return try ChildProcess.spawn(
            Self.sluiceBinary.path,
            ["worker", "--processes", "\(processes)", "--concurrency", "16", "--lease-seconds", "1.5",
             "--poll-ms", "100", "--grace-seconds", "10", "--log-level", "warning"] + extra,
            environment: environment, standardError: .capture)
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
        let h = try WorkerHarness.current
        let supervisor = try startSupervisor(h, processes: 1)
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
        supervisor.send(SIGTERM)
        let status = await supervisor.waitForExit(timeout: .seconds(30))
        #expect(status != nil, "the supervisor did not exit within 30 s of SIGTERM")
        #expect(status == .exited(0), "\(supervisor.standardError())")
    }

    /// The supervisor rescues a SIGKILLed child's jobs at once (`sluice.rescue_worker`), not when
    /// their 60 s leases expire: they run again under another worker id within 20 s of the kill,
    /// and each still ends with exactly one result.
    @Test func supervisorRescuesAKilledChildsJobsAtOnce() async throws {
        let h = try WorkerHarness.current
        let supervisor = try startSupervisor(h, processes: 2, extra: ["--lease-seconds", "60"])
        _ = try await workerPIDs(h, count: 2)
        let ids = try await h.client.enqueue(batch: (0..<12).map { i in
            echo("acme", "long \(i)", metadata: #"{"echo_delay_ms":6000}"#)
        }).map(\.id)
        for _ in 0..<400 {
            if try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'running'", [ids]) == 12 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let owners = try await h.postgres.query("SELECT id, lease_owner FROM sluice.jobs WHERE id = ANY($1) AND state = 'running'", [ids])
            .rows.map { (try $0.decode(UUID.self, at: 0), try $0.decode(String.self, at: 1)) }
        try #require(owners.count == 12, "the 12 jobs did not all start: \(supervisor.standardError())")
        // The victim: the worker process holding the first job (its id is host:pid:token).
        let victimID = owners[0].1
        let victimPID = try #require(Int32(victimID.split(separator: ":").dropLast().last ?? ""))
        let victimJobs = owners.filter { $0.1 == victimID }.map(\.0)
        let killedAt = ContinuousClock.now
        kill(victimPID, SIGKILL)
        // Running again (attempt 2, claimed by another worker id) long before a lease could expire.
        var rerun = 0
        while ContinuousClock.now - killedAt < .seconds(20) {
            rerun = try await h.count("""
                SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND attempt = 2
                   AND (state = 'succeeded' OR (state = 'running' AND lease_owner <> $2))
                """, [victimJobs, victimID])
            if rerun == victimJobs.count { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(rerun == victimJobs.count, "\(rerun) of \(victimJobs.count) jobs of the killed worker ran again within 20 s")
        // Rescued by the supervisor (an 'interrupted' attempt naming the dead worker), not by lease expiry.
        #expect(try await h.count("""
            SELECT count(*) FROM sluice.attempts WHERE job_id = ANY($1) AND attempt = 1 AND outcome = 'interrupted' AND worker = $2
            """, [victimJobs, victimID]) == victimJobs.count)
        #expect(try await h.count("SELECT count(*) FROM sluice.workers WHERE id = $1", [victimID]) == 0)
        // Every job ends with exactly one result; the other worker's jobs were not disturbed.
        for id in ids {
            let job = try await h.client.wait(for: id, timeout: .seconds(60))
            #expect(job.state == .succeeded)
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.results WHERE job_id = ANY($1)", [ids]) == 12)
        #expect(try await h.count("SELECT count(DISTINCT job_id) FROM sluice.results WHERE job_id = ANY($1)", [ids]) == 12)
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND attempt = 1", [ids]) == 12 - victimJobs.count)
        #expect(supervisor.standardError().contains("rescued the running jobs of a dead worker process"))
        supervisor.send(SIGTERM)
        let status = await supervisor.waitForExit(timeout: .seconds(30))
        #expect(status == .exited(0), "\(supervisor.standardError())")
    }

    @Test func sigtermDrainsInFlightJobs() async throws {
        let h = try WorkerHarness.current
        let supervisor = try startSupervisor(h, processes: 2)
        _ = try await workerPIDs(h, count: 2)
        let ids = try await h.client.enqueue(batch: (0..<6).map { _ in echo("acme", "drain", metadata: #"{"echo_delay_ms":800}"#) }).map(\.id)
        for _ in 0..<200 {
            if !(try await h.count("SELECT count(*) FROM sluice.jobs WHERE state = 'running'") < 6) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        supervisor.send(SIGTERM)
        let status = await supervisor.waitForExit(timeout: .seconds(30))
        #expect(status != nil, "the supervisor did not exit within 30 s of SIGTERM")
        #expect(status == .exited(0), "\(supervisor.standardError())")
        // Every in-flight job finished within the grace period; none was lost or left running.
        #expect(try await h.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1) AND state = 'succeeded'", [ids]) == 6)
        #expect(try await h.count("SELECT count(*) FROM sluice.workers") == 0)
    }
}
