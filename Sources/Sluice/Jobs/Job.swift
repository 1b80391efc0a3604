public import Foundation

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
    /// When the running attempt's lease ends: the later of the claim's lease and its last
    /// renewal (`lease_expires_at`, `lease_renewed_until`). Nil when the job is not running.
    public var leaseExpiresAt: Date?
    public var lastErrorClass: String?
    public var lastError: String?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// Why a queued job has not started yet: a rate-limit wait, a cooldown, a paused model, or
    /// its tenant's budget hold. Nil when nothing holds it (or it is not queued).
    public var waitReason: String?
    /// The route the job names (stored as provider `route` and the route's name as model), nil
    /// for a job that names a provider and model. The worker keeps it on the copy of the job it
    /// runs against one of the route's targets (whose provider and model it sets).
    public var route: String?
    /// A route job's progress: the index of the target its next attempt starts from.
    public var routeStep: Int
    /// A route job's largest context window known to be too small for its request (a target
    /// failed with `context_length`): later attempts only try targets with larger windows.
    public var routeContextFloor: Int?
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
