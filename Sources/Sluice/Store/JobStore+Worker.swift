public import Foundation
import SluiceJSON
import SluicePostgres

extension JobStore {
    /// What one claim asks for (the parameters of `sluice.claim`).
    public struct ClaimRequest: Sendable {
        /// The claiming worker's id (becomes the jobs' lease owner).
        public var worker: String
        /// At most this many jobs.
        public var limit: Int
        /// Lanes to take from, in the worker's configuration.
        public var lanes: [Lane]
        /// Only these tenants (nil: all).
        public var tenants: [String]?
        /// The lease each claimed job gets.
        public var lease: Duration
        /// A lower lane whose oldest job waited longer gets a share first.
        public var starvationAfter: Duration
        /// Slots of `limit` only interactive jobs and light tenants' jobs may take.
        public var reserved: Int
        /// At most this many tenants read per lane, in fair-queue order.
        public var tenantWindow: Int
        /// Tenants not to claim for now (their rate-limit bucket is known to be empty).
        public var skipTenants: [String]
        /// Provider/models (`provider/model`) not to claim for now (cooling down, breaker open,
        /// bucket empty).
        public var skipModels: [String]

        public init(worker: String, limit: Int, lanes: [Lane], tenants: [String]?, lease: Duration,
                    starvationAfter: Duration, reserved: Int, tenantWindow: Int, skipTenants: [String] = [],
                    skipModels: [String] = []) {
            self.worker = worker
            self.limit = limit
            self.lanes = lanes
            self.tenants = tenants
            self.lease = lease
            self.starvationAfter = starvationAfter
            self.reserved = reserved
            self.tenantWindow = tenantWindow
            self.skipTenants = skipTenants
            self.skipModels = skipModels
        }
    }

    /// `sluice.claim`: marks up to `limit` runnable jobs running with a lease for the worker
    /// and returns them (see `Migrations/R60_claim.sql` for the order and fairness rules).
    public func claim(_ request: ClaimRequest) async throws(SluiceError) -> [Job] {
        let lanes = "{" + request.lanes.map(\.rawValue).joined(separator: ",") + "}"
        return try await run("claim") {
            let result = try await postgres.query("""
                SELECT \(unescaped: Job.storeColumns) FROM sluice.claim(\(request.worker), \(request.limit)::int, \
                \(lanes)::sluice.lane[], \(request.tenants)::text[], \(Self.interval(request.lease))::interval, \
                \(Self.interval(request.starvationAfter))::interval, \(request.reserved)::int, \(request.tenantWindow)::int, \
                \(request.skipTenants.isEmpty ? nil : request.skipTenants)::text[], \
                p_skip_models => \(request.skipModels.isEmpty ? nil : request.skipModels)::text[])
                """)
            return try result.rows.map(Job.init(storeRow:))
        }
    }

    /// What `sluice.renew_leases` says about one job.
    public struct LeaseRenewal: Sendable, Hashable {
        public var jobID: UUID
        /// False: the worker no longer holds this attempt (rescued, finished elsewhere).
        public var owned: Bool
        /// A submitter asked to cancel the job.
        public var cancelRequested: Bool
    }

    /// `sluice.renew_leases`: extends the worker's leases on these jobs.
    public func renewLeases(worker: String, jobs: [UUID], lease: Duration) async throws(SluiceError) -> [LeaseRenewal] {
        try await run("renewLeases") {
            let result = try await postgres.query(
                "SELECT id, owned, cancel_requested FROM sluice.renew_leases(\(worker), \(jobs)::uuid[], \(Self.interval(lease))::interval)")
            return try result.rows.map { row in
                LeaseRenewal(jobID: try row.decode(UUID.self, column: "id"), owned: try row.decode(Bool.self, column: "owned"),
                             cancelRequested: try row.decode(Bool.self, column: "cancel_requested"))
            }
        }
    }

    /// `sluice.release`: puts jobs the worker still holds (at these attempts) back in the
    /// queue without consuming an attempt (graceful shutdown).
    public func release(worker: String, jobs: [(id: UUID, attempt: Int)]) async throws(SluiceError) {
        try await run("release") {
            _ = try await postgres.query(
                "SELECT sluice.release(\(worker), \(jobs.map(\.id))::uuid[], \(jobs.map(\.attempt))::int[])")
        }
    }

    /// `sluice.finish_attempts`: records a group of outcomes in one statement; outcomes whose
    /// attempt the worker no longer holds are refused. Waiters are notified inside the
    /// transaction.
    /// - Returns: how many were recorded.
    public func finishAttempts(worker: String, outcomes: [AttemptOutcome]) async throws(SluiceError) -> Int {
        try await finishAttempts(worker: worker, outcomes: outcomes, notifyDone: true).count
    }

    /// `sluice.finish_attempts`, with or without its `sluice_done` notification inside the
    /// transaction. Without, the caller sends it once this returns (the group is committed):
    /// ``notifyDone(_:)`` with the terminal ones of the returned ids. That keeps the
    /// completion's synchronous commit from holding PostgreSQL's notify commit lock through its
    /// WAL flush, which every other notifying commit (enqueue wake-ups) would queue behind.
    /// - Returns: the ids of the outcomes that were recorded (the others were refused: the
    ///   job's lease moved on).
    public func finishAttempts(worker: String, outcomes: [AttemptOutcome], notifyDone: Bool) async throws(SluiceError) -> [UUID] {
        var json = JSONWriter(capacity: outcomes.count * 512)
        json.beginArray()
        for outcome in outcomes { outcome.write(to: &json) }
        json.endArray()
        let payload = PostgresJSON(bytes: json.bytes)
        return try await run("finishAttempts") {
            try await postgres.query("SELECT sluice.finish_attempts(\(worker), \(payload)::jsonb, \(notifyDone)) AS id")
                .rows.map { try $0.decode(UUID.self, at: 0) }
        }
    }

    /// `sluice.notify_done_async`: tells waiters (``SluiceClient/wait(for:timeout:)``) that these
    /// jobs reached a terminal state, in a transaction of its own committed asynchronously. Call
    /// it only after the transitions committed (see ``finishAttempts(worker:outcomes:notifyDone:)``).
    /// - Returns: how many notifications were sent (one per 200 ids).
    @discardableResult
    public func notifyDone(_ ids: [UUID]) async throws(SluiceError) -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await run("notifyDone") {
            try await postgres.query("SELECT sluice.notify_done_async(\(ids)::uuid[]) AS sent").first?.decode(Int.self, column: "sent") ?? 0
        }
    }

    /// `sluice.rescue_expired`: returns jobs whose lease expired (their worker died) to the
    /// queue, or dead-letters them when no attempt is left.
    /// - Parameters:
    ///   - limit: most jobs rescued by this call.
    ///   - every: paces the sweep cluster-wide: it runs only if no sweep (by any process) started
    ///     within this interval and none is running, else returns 0 at once. `nil` sweeps now.
    /// - Returns: how many were rescued.
    public func rescueExpired(limit: Int = 1000, every: Duration? = nil) async throws(SluiceError) -> Int {
        var invalid: SluiceError?
        if limit <= 0 {
            invalid = .argument("limit", "positive", "the rescue limit must be positive (got \(limit))")
        } else if let every, every <= .zero {
            invalid = .argument("every", "positive", "the rescue pacing interval must be positive (got \(every))")
        }
        if var invalid {
            invalid.operation = "rescueExpired"
            throw invalid
        }
        let pacing = every.map(Self.interval)
        return try await run("rescueExpired") {
            try await postgres.query("SELECT sluice.rescue_expired(\(limit)::int, \(pacing)::interval) AS rescued")
                .first?.decode(Int.self, column: "rescued") ?? 0
        }
    }

    /// `sluice.rescue_worker`: rescues at once the running jobs of a worker process known to be
    /// dead (its supervisor saw it exit abnormally), as a lease expiry would later: each goes
    /// back to the queue as a new attempt (or dead, or cancelled), with an `interrupted` attempt
    /// row carrying `reason`. Only jobs whose lease holder is exactly `worker` move; the
    /// process's registry row is removed.
    /// - Returns: how many jobs were rescued.
    public func rescueWorker(_ worker: String, reason: String) async throws(SluiceError) -> Int {
        guard !worker.isEmpty else {
            var error = SluiceError.argument("worker", "required", "the worker id must not be empty")
            error.operation = "rescueWorker"
            throw error
        }
        return try await run("rescueWorker") {
            try await postgres.query("SELECT sluice.rescue_worker(\(worker), \(reason)) AS rescued")
                .first?.decode(Int.self, column: "rescued") ?? 0
        }
    }

    /// `sluice.fair_repair`: registers in the fair queue every tenant and lane that has queued
    /// jobs but no fair-queue row (a safety net: there should be none). Returns how many it
    /// added.
    public func repairFairQueue() async throws(SluiceError) -> Int {
        try await run("repairFairQueue") {
            try await postgres.query("SELECT sluice.fair_repair() AS added").first?.decode(Int.self, column: "added") ?? 0
        }
    }

    /// Prunes one batch of finished jobs if no other worker is pruning (a transaction-level
    /// advisory lock elects one; a crashed pruner frees it at once).
    /// - Returns: rows deleted, or nil when another worker holds the pruning lock.
    public func pruneBatch(retention: Duration, deadRetention: Duration, limit: Int) async throws(SluiceError) -> Int? {
        try await run("prune") {
            try await postgres.withTransaction { connection -> Int? in
                let lock = try await connection.query("SELECT pg_try_advisory_xact_lock(\(StoreNames.pruneLock)) AS won")
                guard try lock.rows[0].decode(Bool.self, column: "won") else { return nil }
                let result = try await connection.query("""
                    SELECT sluice.prune(now() - \(Self.interval(retention))::interval, \
                    now() - \(Self.interval(deadRetention))::interval, \(limit)::int) AS deleted
                    """)
                return try result.rows[0].decode(Int.self, column: "deleted")
            }
        }
    }

    // MARK: The worker registry (sluice.workers)

    /// Adds the worker to the registry (or refreshes its heartbeat if it is there).
    public func registerWorker(id: String, host: String, pid: Int, lanes: [Lane], concurrency: Int) async throws(SluiceError) {
        try await run("registerWorker") {
            _ = try await postgres.query("""
                INSERT INTO sluice.workers (id, host, pid, lanes, concurrency)
                VALUES (\(id), \(host), \(pid), \(lanes.map(\.rawValue))::text[], \(concurrency))
                ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = now()
                """)
        }
    }

    /// Records that the worker is alive.
    public func workerHeartbeat(id: String) async throws(SluiceError) {
        try await run("workerHeartbeat") {
            _ = try await postgres.query("UPDATE sluice.workers SET last_heartbeat_at = now() WHERE id = \(id)")
        }
    }

    /// Removes registry rows of workers silent for longer than `silentFor`.
    public func removeSilentWorkers(silentFor: Duration) async throws(SluiceError) {
        try await run("removeSilentWorkers") {
            _ = try await postgres.query(
                "DELETE FROM sluice.workers WHERE last_heartbeat_at < now() - \(Self.interval(silentFor))::interval")
        }
    }

    /// Removes the worker from the registry (on shutdown).
    public func deregisterWorker(id: String) async throws(SluiceError) {
        try await run("deregisterWorker") {
            _ = try await postgres.query("DELETE FROM sluice.workers WHERE id = \(id)")
        }
    }

    /// An interval as PostgreSQL text (`"1500 milliseconds"`).
    static func interval(_ duration: Duration) -> String {
        "\(Int(duration.milliseconds.rounded())) milliseconds"
    }
}
