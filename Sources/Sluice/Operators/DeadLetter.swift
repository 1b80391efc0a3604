public import Foundation

/// A dead letter with its job's target (`sluice dlq list|show`).
public struct DeadLetter: Sendable {
    public var jobID: UUID
    public var tenant: String
    public var lane: String
    public var provider: String
    public var model: String
    public var errorClass: String
    public var reason: String
    public var lastError: String?
    public var attempts: Int
    public var deadAt: Date
    /// When, as which job and by whom it was replayed (nil: never).
    public var replayedAt: Date?
    public var replayedAs: UUID?
    public var replayedBy: String?
}

/// One attempt of a job (`sluice dlq show`).
public struct AttemptRecord: Sendable {
    public var attempt: Int
    public var worker: String?
    public var startedAt: Date
    public var finishedAt: Date?
    /// `succeeded`, `failed`, `cancelled`, `lease_expired` or `interrupted`.
    public var outcome: String
    public var httpStatus: Int?
    public var errorClass: String?
    public var errorMessage: String?
    public var durationMilliseconds: Double?
    /// The provider and model the attempt called (nil on attempts recorded before 0009, and on
    /// lease expiries).
    public var target: RouteTarget?
    /// A route job's reason for moving on to another target after this attempt.
    public var fallback: String?
    /// Route targets admission passed over before this attempt's call.
    public var skipped: [RouteSkip] = []
}

/// Which dead letters an operator command addresses.
public struct DeadLetterFilter: Sendable {
    public var tenant: String?
    public var errorClass: String?
    public var model: String?
    /// Dead at or after this time.
    public var since: Date?
    /// Dead before this time.
    public var before: Date?
    /// Include dead letters replayed before (replayed before `replayedBefore` only, when set).
    public var includeReplayed = false
    public var replayedBefore: Date?

    public init(tenant: String? = nil, errorClass: String? = nil, model: String? = nil, since: Date? = nil,
                before: Date? = nil, includeReplayed: Bool = false, replayedBefore: Date? = nil) {
        self.tenant = tenant
        self.errorClass = errorClass
        self.model = model
        self.since = since
        self.before = before
        self.includeReplayed = includeReplayed
        self.replayedBefore = replayedBefore
    }
}

/// What replaying one dead letter did.
public struct ReplayResult: Sendable {
    public enum Outcome: String, Sendable {
        /// Queued as the fresh job `replayedAs`.
        case replayed
        /// Replayed before (as `replayedAs`); not queued again.
        case alreadyReplayed = "already_replayed"
        /// No dead letter with this id.
        case notFound = "not_found"
    }

    public var jobID: UUID
    public var replayedAs: UUID?
    public var outcome: Outcome
}
