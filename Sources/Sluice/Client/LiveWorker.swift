import Foundation
import SluicePostgres

/// A worker process as it registered itself in `sluice.workers` (``SluiceClient/workers()``).
public struct LiveWorker: Sendable, Equatable {
    /// `host:pid:random`, also the lease owner of the jobs it runs.
    public var id: String
    public var host: String
    public var pid: Int
    public var lanes: [String]
    /// Slots of the process.
    public var concurrency: Int
    public var startedAt: Date
    public var lastHeartbeatAt: Date
    /// Jobs it holds a lease on now.
    public var runningJobs: Int

    /// Whether its heartbeat is older than `staleAfter` (a process that died without
    /// deregistering; its row expires and its jobs are rescued when their leases run out).
    public func isStale(now: Date = Date(), staleAfter: TimeInterval = 60) -> Bool {
        now.timeIntervalSince(lastHeartbeatAt) > staleAfter
    }
}

extension SluiceClient {
    /// Registered worker processes, oldest first, with the number of jobs each is running.
    public func workers() async throws(SluiceError) -> [LiveWorker] {
        do {
            let result = try await postgres.query(
                """
                SELECT w.id, w.host, w.pid, w.lanes, w.concurrency, w.started_at, w.last_heartbeat_at,
                       (SELECT count(*) FROM sluice.jobs j WHERE j.state = 'running' AND j.lease_owner = w.id)
                  FROM sluice.workers w
                 ORDER BY w.started_at, w.id
                """)
            return try result.rows.map { row in
                LiveWorker(id: try row.decode(String.self, at: 0), host: try row.decode(String.self, at: 1),
                           pid: try row.decode(Int.self, at: 2), lanes: try row.decode([String].self, at: 3),
                           concurrency: try row.decode(Int.self, at: 4), startedAt: try row.decode(Date.self, at: 5),
                           lastHeartbeatAt: try row.decode(Date.self, at: 6), runningJobs: try row.decode(Int.self, at: 7))
            }
        } catch {
            throw SluiceError.from(error)
        }
    }
}
