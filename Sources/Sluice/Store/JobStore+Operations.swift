public import SluicePostgres

extension JobStore {
    /// Queued jobs of one lane at one moment (``queueStatistics(on:)``).
    public struct LaneQueueStatistics: Sendable, Hashable {
        public var lane: Lane
        /// Queued jobs whose `run_at` has come.
        public var runnable: Int
        /// Queued jobs scheduled for later (retries waiting out their backoff, `run_at` in the future).
        public var scheduled: Int
        /// How long the oldest runnable job has waited since its `run_at` (zero when none).
        public var oldestAge: Duration

        public init(lane: Lane, runnable: Int, scheduled: Int, oldestAge: Duration) {
            self.lane = lane
            self.runnable = runnable
            self.scheduled = scheduled
            self.oldestAge = oldestAge
        }
    }

    /// Checks that the database answers (`SELECT 1` on a pooled connection): the readiness probe.
    public func ping() async throws(SluiceError) {
        try await run("ping") {
            _ = try await postgres.query("SELECT 1")
        }
    }

    /// Tries to become the queue sampler: `pg_try_advisory_lock` on `connection`'s session.
    /// The lock is held until the session ends (the connection closes or breaks), so exactly
    /// one process samples at a time and a dead sampler's successor takes over at its next try.
    /// - Returns: whether this session holds the lock now.
    public static func tryBecomeQueueSampler(on connection: PostgresConnection) async throws(SluiceError) -> Bool {
        try await run("tryBecomeQueueSampler") {
            let result = try await connection.query("SELECT pg_try_advisory_lock(\(StoreNames.queueSamplerLock)) AS won")
            return try result.rows[0].decode(Bool.self, column: "won")
        }
    }

    /// Queue depth and the age of the oldest runnable job per lane, one row per lane (lanes
    /// without queued jobs included, as zeros). Reads the claim index (`jobs_claim_idx`, only
    /// queued rows), so its cost grows with the backlog, not the table: run it from one
    /// elected process every few seconds, not per scrape. Bounded by a 10 s statement timeout.
    public static func queueStatistics(on connection: PostgresConnection) async throws(SluiceError) -> [LaneQueueStatistics] {
        try await run("queueStatistics") {
            try await connection.withTransaction { connection in
                _ = try await connection.query("SET LOCAL statement_timeout = '10s'")
                let result = try await connection.query("""
                    SELECT lane::text AS lane,
                           count(*) FILTER (WHERE run_at <= now()) AS runnable,
                           count(*) FILTER (WHERE run_at > now()) AS scheduled,
                           coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now())), 0)::float8 AS oldest
                      FROM sluice.jobs WHERE state = 'queued' GROUP BY lane
                    """)
                var byLane: [Lane: LaneQueueStatistics] = [:]
                for row in result.rows {
                    guard let lane = Lane(rawValue: try row.decode(String.self, column: "lane")) else { continue }
                    let oldest = max(0, try row.decode(Double.self, column: "oldest"))
                    byLane[lane] = LaneQueueStatistics(
                        lane: lane, runnable: try row.decode(Int.self, column: "runnable"),
                        scheduled: try row.decode(Int.self, column: "scheduled"),
                        oldestAge: .milliseconds(Int64((oldest * 1000).rounded())))
                }
                return Lane.allCases.map { byLane[$0] ?? LaneQueueStatistics(lane: $0, runnable: 0, scheduled: 0, oldestAge: .zero) }
            }
        }
    }
}
