import Foundation
import SluicePostgres

// Typed rows of the store's statements, decoded by column name (the column lists below and the
// decoders next to them are the whole contract; the order of the columns does not matter).

extension Job {
    /// The columns ``init(storeRow:)`` reads, for SELECTs and RETURNING clauses.
    static let storeColumns = """
        id, tenant, lane::text AS lane, state::text AS state, provider, model, request, stream, max_output_tokens, \
        estimated_input_tokens, run_at, attempt, max_attempts, timeout_ms, idempotency_key, webhook_url, \
        metadata, traceparent, cancel_requested, lease_owner, lease_expires_at, lease_renewed_until, last_error_class, \
        last_error, created_at, started_at, finished_at, route_step, route_context_floor
        """

    /// ``storeColumns`` plus why a queued job waits (its own deferral reason, or its tenant's
    /// budget hold), for reads of `sluice.jobs` aliased `j`.
    static let readColumns = storeColumns.split(separator: ",").map { "j." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        .joined(separator: ", ") + """
        , CASE WHEN j.state = 'queued' THEN coalesce(j.wait_reason, (SELECT 'tenant held until ' \
        || to_char(t.held_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ': ' || t.hold_reason \
        FROM sluice.tenants t WHERE t.id = j.tenant AND t.held_until > now())) END AS wait_reason
        """

    init(storeRow row: PostgresRow) throws(PostgresError) {
        // In the order of storeColumns: each name is checked at its expected position and only
        // looked up by name when the statement put it elsewhere (claims decode thousands of
        // rows a second; hashing 28 names per row was ~1 % of a worker's CPU).
        var c = StoreRowCursor(row)
        id = try c.decode(UUID.self, "id")
        tenant = try c.decode(String.self, "tenant")
        let laneText = try c.decode(String.self, "lane")
        guard let lane = Lane(rawValue: laneText) else {
            throw PostgresError(code: .decoding, message: "unknown lane \(laneText)")
        }
        self.lane = lane
        let stateText = try c.decode(String.self, "state")
        guard let state = JobState(rawValue: stateText) else {
            throw PostgresError(code: .decoding, message: "unknown state \(stateText)")
        }
        self.state = state
        provider = try c.decode(String.self, "provider")
        model = try c.decode(String.self, "model")
        request = JSONDocument(bytes: try c.decode(PostgresJSON.self, "request").bytes)
        stream = try c.decode(Bool.self, "stream")
        maxOutputTokens = try c.decode(Int?.self, "max_output_tokens")
        estimatedInputTokens = try c.decode(Int.self, "estimated_input_tokens")
        runAt = try c.decode(Date.self, "run_at")
        attempt = try c.decode(Int.self, "attempt")
        maxAttempts = try c.decode(Int.self, "max_attempts")
        timeout = .milliseconds(try c.decode(Int.self, "timeout_ms"))
        idempotencyKey = try c.decode(String?.self, "idempotency_key")
        webhookURL = try c.decode(String?.self, "webhook_url")
        metadata = JSONDocument(bytes: try c.decode(PostgresJSON.self, "metadata").bytes)
        traceparent = try c.decode(String?.self, "traceparent")
        cancelRequested = try c.decode(Bool.self, "cancel_requested")
        leaseOwner = try c.decode(String?.self, "lease_owner")
        // The lease ends at the later of the claim's lease and its last renewal (0014).
        let claimedLease = try c.decode(Date?.self, "lease_expires_at")
        let renewedLease = try c.decode(Date?.self, "lease_renewed_until")
        leaseExpiresAt = claimedLease.map { max($0, renewedLease ?? $0) }
        lastErrorClass = try c.decode(String?.self, "last_error_class")
        lastError = try c.decode(String?.self, "last_error")
        createdAt = try c.decode(Date.self, "created_at")
        startedAt = try c.decode(Date?.self, "started_at")
        finishedAt = try c.decode(Date?.self, "finished_at")
        route = provider == "route" ? model : nil
        routeStep = try c.decode(Int?.self, "route_step") ?? 0
        routeContextFloor = try c.decode(Int?.self, "route_context_floor")
        waitReason = row.columnNames.contains("wait_reason") ? try row.decode(String?.self, column: "wait_reason") : nil
    }
}

/// Decodes a row's columns by name in the order a column list names them: the name is checked
/// at the next expected position first (``PostgresRow/decode(_:column:expectedAt:)``).
struct StoreRowCursor {
    let row: PostgresRow
    private var position = 0

    init(_ row: PostgresRow) { self.row = row }

    mutating func decode<T: PostgresDecodable>(_ type: T.Type, _ column: String) throws(PostgresError) -> T {
        defer { position += 1 }
        return try row.decode(type, column: column, expectedAt: position)
    }
}

extension JobResult {
    /// The columns ``init(storeRow:)`` reads.
    static let storeColumns = """
        job_id, tenant, output_text, tool_calls, finish_reason, raw_response, input_tokens, output_tokens, \
        cache_read_tokens, cache_write_tokens, cost_usd::float8 AS cost_usd, provider, model, latency_ms, ttft_ms, created_at
        """

    init(storeRow row: PostgresRow) throws(PostgresError) {
        jobID = try row.decode(UUID.self, column: "job_id")
        tenant = try row.decode(String.self, column: "tenant")
        outputText = try row.decode(String?.self, column: "output_text")
        toolCalls = JSONDocument(bytes: try row.decode(PostgresJSON.self, column: "tool_calls").bytes)
        finishReason = try row.decode(String?.self, column: "finish_reason")
        rawResponse = try row.decode(PostgresJSON?.self, column: "raw_response").map { JSONDocument(bytes: $0.bytes) }
        usage = Usage(
            inputTokens: try row.decode(Int.self, column: "input_tokens"),
            outputTokens: try row.decode(Int.self, column: "output_tokens"),
            cacheReadTokens: try row.decode(Int.self, column: "cache_read_tokens"),
            cacheWriteTokens: try row.decode(Int.self, column: "cache_write_tokens"))
        costUSD = try row.decode(Double?.self, column: "cost_usd")
        provider = try row.decode(String.self, column: "provider")
        model = try row.decode(String.self, column: "model")
        latencyMilliseconds = try row.decode(Double?.self, column: "latency_ms")
        timeToFirstTokenMilliseconds = try row.decode(Double?.self, column: "ttft_ms")
        createdAt = try row.decode(Date.self, column: "created_at")
    }
}

extension LiveWorker {
    init(storeRow row: PostgresRow) throws(PostgresError) {
        id = try row.decode(String.self, column: "id")
        host = try row.decode(String.self, column: "host")
        pid = try row.decode(Int.self, column: "pid")
        lanes = try row.decode([String].self, column: "lanes")
        concurrency = try row.decode(Int.self, column: "concurrency")
        startedAt = try row.decode(Date.self, column: "started_at")
        lastHeartbeatAt = try row.decode(Date.self, column: "last_heartbeat_at")
        runningJobs = try row.decode(Int.self, column: "running_jobs")
    }
}
