public import Foundation
import SluicePostgres
import SluiceJSON

extension JobStore {
    static let deadLetterColumns = """
        d.job_id, d.tenant, j.lane::text AS lane, j.provider, j.model, d.error_class, d.reason, d.last_error, d.attempts,
        d.dead_at, d.replayed_at, d.replayed_as, d.replayed_by
        """

    /// The filter as a WHERE clause over `sluice.dead_letters d JOIN sluice.jobs j`, binds from $`first`.
    static func deadLetterCondition(_ filter: DeadLetterFilter, first: Int) -> (String, [(any PostgresEncodable)?]) {
        let n = first
        let sql = """
            (($\(n)::text IS NULL OR d.tenant = $\(n)) AND ($\(n + 1)::text IS NULL OR d.error_class = $\(n + 1))
             AND ($\(n + 2)::text IS NULL OR j.model = $\(n + 2)) AND ($\(n + 3)::timestamptz IS NULL OR d.dead_at >= $\(n + 3))
             AND ($\(n + 4)::timestamptz IS NULL OR d.dead_at < $\(n + 4))
             AND (d.replayed_at IS NULL OR ($\(n + 5)::boolean AND ($\(n + 6)::timestamptz IS NULL OR d.replayed_at < $\(n + 6)))))
            """
        return (sql, [filter.tenant, filter.errorClass, filter.model, filter.since, filter.before, filter.includeReplayed,
                      filter.replayedBefore])
    }

    /// Dead letters matching `filter`, in job id order after `after` (keyset pagination).
    public func deadLetters(_ filter: DeadLetterFilter, after: UUID? = nil, limit: Int = 100) async throws(SluiceError) -> [DeadLetter] {
        let (condition, binds) = Self.deadLetterCondition(filter, first: 3)
        return try await run("deadLetters") {
            try await postgres.query("""
                SELECT \(Self.deadLetterColumns) FROM sluice.dead_letters d JOIN sluice.jobs j ON j.id = d.job_id
                 WHERE ($1::uuid IS NULL OR d.job_id > $1) AND \(condition)
                 ORDER BY d.job_id LIMIT $2
                """, [after, limit] + binds).rows.map(DeadLetter.init(storeRow:))
        }
    }

    /// How many dead letters match `filter`.
    public func countDeadLetters(_ filter: DeadLetterFilter) async throws(SluiceError) -> Int {
        let (condition, binds) = Self.deadLetterCondition(filter, first: 1)
        return try await run("countDeadLetters") {
            try await postgres.query("""
                SELECT count(*) AS n FROM sluice.dead_letters d JOIN sluice.jobs j ON j.id = d.job_id WHERE \(condition)
                """, binds).rows[0].decode(Int.self, column: "n")
        }
    }

    /// One dead letter, or nil.
    public func deadLetter(_ id: UUID) async throws(SluiceError) -> DeadLetter? {
        try await run("deadLetter") {
            try await postgres.query("""
                SELECT \(unescaped: Self.deadLetterColumns) FROM sluice.dead_letters d JOIN sluice.jobs j ON j.id = d.job_id
                 WHERE d.job_id = \(id)
                """).first.map(DeadLetter.init(storeRow:))
        }
    }

    /// A job's attempts, first to last.
    public func attempts(_ jobID: UUID) async throws(SluiceError) -> [AttemptRecord] {
        try await run("attempts") {
            try await postgres.query("""
                SELECT attempt, worker, started_at, finished_at, outcome, http_status, error_class, error_message, duration_ms,
                       provider, model, fallback, skipped
                  FROM sluice.attempts WHERE job_id = \(jobID) ORDER BY attempt
                """).rows.map { row in
                var record = AttemptRecord(attempt: try row.decode(Int.self, column: "attempt"), worker: try row.decode(String?.self, column: "worker"),
                              startedAt: try row.decode(Date.self, column: "started_at"),
                              finishedAt: try row.decode(Date?.self, column: "finished_at"),
                              outcome: try row.decode(String.self, column: "outcome"),
                              httpStatus: try row.decode(Int?.self, column: "http_status"),
                              errorClass: try row.decode(String?.self, column: "error_class"),
                              errorMessage: try row.decode(String?.self, column: "error_message"),
                              durationMilliseconds: try row.decode(Double?.self, column: "duration_ms"))
                if let provider = try row.decode(String?.self, column: "provider"), let model = try row.decode(String?.self, column: "model") {
                    record.target = RouteTarget(provider: provider, model: model)
                }
                record.fallback = try row.decode(String?.self, column: "fallback")
                if let skipped = try row.decode(PostgresJSON?.self, column: "skipped"),
                   case .array(let items)? = try? JSONValue.parse(skipped.bytes) {
                    record.skipped = items.compactMap { item in
                        guard let target = item["target"]?.stringValue.flatMap(RouteTarget.init(parsing:)) else { return nil }
                        return RouteSkip(target: target, reason: item["reason"]?.stringValue ?? "")
                    }
                }
                return record
            }
        }
    }

    /// `sluice.replay_dead_letters`: each dead letter becomes a fresh job (a copy of the dead
    /// job's spec with `replay_of` set), and is marked replayed (when, by whom, as which job) in
    /// the same statement, so an interrupted replay run again never queues one twice. One
    /// replayed before is skipped unless `force`. `lane` overrides the jobs' lane.
    public func replayDeadLetters(_ ids: [UUID], by: String, force: Bool, lane: Lane? = nil) async throws(SluiceError) -> [ReplayResult] {
        try await run("replayDeadLetters") {
            try await postgres.query("""
                SELECT job_id, replayed_as, outcome FROM sluice.replay_dead_letters(\(ids)::uuid[], \(by), \(force), \(lane?.rawValue)::text)
                """).rows.map { row in
                let text = try row.decode(String.self, column: "outcome")
                guard let outcome = ReplayResult.Outcome(rawValue: text) else {
                    throw PostgresError(code: .decoding, message: "unknown replay outcome \(text)")
                }
                return ReplayResult(jobID: try row.decode(UUID.self, column: "job_id"),
                                    replayedAs: try row.decode(UUID?.self, column: "replayed_as"), outcome: outcome)
            }
        }
    }

    /// Deletes dead jobs (with their dead letters, attempts and webhook deliveries) that died
    /// before `before`, at most `limit`. Returns how many.
    public func purgeDeadLetters(before: Date, tenant: String?, limit: Int = 1000) async throws(SluiceError) -> Int {
        try await run("purgeDeadLetters") {
            try await postgres.query("""
                WITH victims AS (
                    SELECT d.job_id FROM sluice.dead_letters d
                     WHERE d.dead_at < \(before) AND (\(tenant)::text IS NULL OR d.tenant = \(tenant))
                     ORDER BY d.dead_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                ), dl AS (
                    DELETE FROM sluice.dead_letters d USING victims v WHERE d.job_id = v.job_id RETURNING d.job_id
                ), jobs AS (
                    DELETE FROM sluice.jobs j USING dl WHERE j.id = dl.job_id AND j.state = 'dead' RETURNING j.id
                ), att AS (
                    DELETE FROM sluice.attempts a USING jobs WHERE a.job_id = jobs.id
                ), hooks AS (
                    DELETE FROM sluice.webhook_deliveries w USING jobs WHERE w.job_id = jobs.id AND w.state <> 'pending'
                )
                SELECT count(*)::integer AS n FROM dl
                """).rows[0].decode(Int.self, column: "n")
        }
    }
}

extension DeadLetter {
    init(storeRow row: PostgresRow) throws(PostgresError) {
        jobID = try row.decode(UUID.self, column: "job_id")
        tenant = try row.decode(String.self, column: "tenant")
        lane = try row.decode(String.self, column: "lane")
        provider = try row.decode(String.self, column: "provider")
        model = try row.decode(String.self, column: "model")
        errorClass = try row.decode(String.self, column: "error_class")
        reason = try row.decode(String.self, column: "reason")
        lastError = try row.decode(String?.self, column: "last_error")
        attempts = try row.decode(Int.self, column: "attempts")
        deadAt = try row.decode(Date.self, column: "dead_at")
        replayedAt = try row.decode(Date?.self, column: "replayed_at")
        replayedAs = try row.decode(UUID?.self, column: "replayed_as")
        replayedBy = try row.decode(String?.self, column: "replayed_by")
    }
}
