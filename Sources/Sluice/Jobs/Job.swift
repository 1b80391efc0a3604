import Foundation
import SluicePostgres

/// A job as stored, as the submitter API returns it.
public struct Job: Sendable, Hashable {
    public var id: UUID
    public var tenant: String
    public var lane: Lane
    public var state: JobState
    public var provider: String
    public var model: String
    public var request: JSONDocument
    public var stream: Bool
    public var maxOutputTokens: Int?
    public var estimatedInputTokens: Int
    public var runAt: Date
    /// Attempts started so far (the current one included while running).
    public var attempt: Int
    public var maxAttempts: Int
    public var timeout: Duration
    public var idempotencyKey: String?
    public var webhookURL: String?
    public var metadata: JSONDocument
    public var traceparent: String?
    public var cancelRequested: Bool
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?
    public var lastErrorClass: String?
    public var lastError: String?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?

    /// The column list `init(row:)` reads, for SELECTs and RETURNING clauses.
    public static let columns = """
        id, tenant, lane::text, state::text, provider, model, request, stream, max_output_tokens, \
        estimated_input_tokens, run_at, attempt, max_attempts, timeout_ms, idempotency_key, webhook_url, \
        metadata, traceparent, cancel_requested, lease_owner, lease_expires_at, last_error_class, last_error, \
        created_at, started_at, finished_at
        """

    /// Decodes a row selected with ``columns`` (in that order).
    public init(row: PostgresRow) throws(PostgresError) {
        id = try row.decode(UUID.self, at: 0)
        tenant = try row.decode(String.self, at: 1)
        let laneText = try row.decode(String.self, at: 2)
        guard let lane = Lane(rawValue: laneText) else {
            throw PostgresError(code: .decoding, message: "unknown lane \(laneText)")
        }
        self.lane = lane
        let stateText = try row.decode(String.self, at: 3)
        guard let state = JobState(rawValue: stateText) else {
            throw PostgresError(code: .decoding, message: "unknown state \(stateText)")
        }
        self.state = state
        provider = try row.decode(String.self, at: 4)
        model = try row.decode(String.self, at: 5)
        request = JSONDocument(bytes: try row.decode(PostgresJSON.self, at: 6).bytes)
        stream = try row.decode(Bool.self, at: 7)
        maxOutputTokens = try row.decode(Int?.self, at: 8)
        estimatedInputTokens = try row.decode(Int.self, at: 9)
        runAt = try row.decode(Date.self, at: 10)
        attempt = try row.decode(Int.self, at: 11)
        maxAttempts = try row.decode(Int.self, at: 12)
        timeout = .milliseconds(try row.decode(Int.self, at: 13))
        idempotencyKey = try row.decode(String?.self, at: 14)
        webhookURL = try row.decode(String?.self, at: 15)
        metadata = JSONDocument(bytes: try row.decode(PostgresJSON.self, at: 16).bytes)
        traceparent = try row.decode(String?.self, at: 17)
        cancelRequested = try row.decode(Bool.self, at: 18)
        leaseOwner = try row.decode(String?.self, at: 19)
        leaseExpiresAt = try row.decode(Date?.self, at: 20)
        lastErrorClass = try row.decode(String?.self, at: 21)
        lastError = try row.decode(String?.self, at: 22)
        createdAt = try row.decode(Date.self, at: 23)
        startedAt = try row.decode(Date?.self, at: 24)
        finishedAt = try row.decode(Date?.self, at: 25)
    }
}

/// The outcome of ``SluiceClient/enqueue(_:)``.
public struct EnqueuedJob: Sendable, Hashable {
    public var id: UUID
    /// False when the idempotency key matched an existing job, whose id this is.
    public var created: Bool

    public init(id: UUID, created: Bool) {
        self.id = id
        self.created = created
    }
}
