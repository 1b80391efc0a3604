public import Foundation

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
        try await store.workers()
    }
}
