public import Foundation
public import SluiceSupport

/// A webhook delivery a dispatcher claimed from the outbox (`sluice.claim_webhooks`): what to
/// send, where, and the keys to sign it with.
public struct WebhookDelivery: Sendable {
    /// The outbox row id; the event's `webhook-id` is `msg_` + this id (lower case, no dashes
    /// removed), the same on every attempt.
    public var id: UUID
    public var jobID: UUID
    public var tenant: String
    /// `job.succeeded`, `job.dead` or `job.cancelled`.
    public var event: String
    /// The endpoint: the job's own `webhook_url`, else its tenant's.
    public var url: String
    /// 1 for the first attempt.
    public var attempt: Int
    public var createdAt: Date
    /// The JSON body, the same bytes on every attempt.
    public var payload: [UInt8]
    /// The tenant's signing secrets (`whsec_…`), newest first; empty when the tenant has none.
    public var secrets: [Redacted]
    /// Why the endpoint is disabled, when it is (the delivery is then not sent).
    public var disabledReason: String?
    /// The W3C trace context the job was enqueued with, if any: the delivery's span joins that
    /// trace, and the request carries the span's `traceparent`.
    public var traceparent: String?

    /// The Standard Webhooks `webhook-id` header.
    public var webhookID: String { "msg_" + id.lowercasedText }

    public init(id: UUID, jobID: UUID, tenant: String, event: String, url: String, attempt: Int, createdAt: Date,
                payload: [UInt8], secrets: [Redacted], disabledReason: String?, traceparent: String? = nil) {
        self.id = id
        self.jobID = jobID
        self.tenant = tenant
        self.event = event
        self.url = url
        self.attempt = attempt
        self.createdAt = createdAt
        self.payload = payload
        self.secrets = secrets
        self.disabledReason = disabledReason
        self.traceparent = traceparent
    }
}

/// How one delivery attempt ended (`sluice.finish_webhooks`).
public struct WebhookOutcome: Sendable {
    /// What happens to the delivery.
    public enum Kind: String, Sendable {
        /// 2xx: delivered.
        case delivered
        /// Failed with attempts left: due again at `nextAttemptAt`.
        case retry
        /// Failed on the last attempt (or permanently): `failed`, visible, redeliverable.
        case failed
        /// 410 Gone: failed, and the endpoint is disabled.
        case gone
        /// Not sent because the endpoint is disabled: failed; the endpoint is left as it is.
        case skipped
    }

    public var id: UUID
    public var attempt: Int
    public var kind: Kind
    /// The HTTP status, when a response arrived.
    public var status: Int?
    /// What went wrong (no secrets: URLs are written without userinfo or query).
    public var error: String?
    /// For `.retry`: when the next attempt is due.
    public var nextAttemptAt: Date?

    public init(id: UUID, attempt: Int, kind: Kind, status: Int? = nil, error: String? = nil, nextAttemptAt: Date? = nil) {
        self.id = id
        self.attempt = attempt
        self.kind = kind
        self.status = status
        self.error = error
        self.nextAttemptAt = nextAttemptAt
    }
}

/// A row of the outbox as operators see it (`sluice webhooks list`).
public struct WebhookDeliveryRecord: Sendable {
    public var id: UUID
    public var jobID: UUID
    public var tenant: String
    public var event: String
    /// The endpoint without userinfo, query or fragment.
    public var url: String
    /// `pending`, `delivered` or `failed`.
    public var state: String
    public var attempts: Int
    public var nextAttemptAt: Date
    public var lastAttemptAt: Date?
    public var lastStatus: Int?
    public var lastError: String?
    public var createdAt: Date
    public var deliveredAt: Date?
    /// Why the endpoint is disabled, when it is.
    public var endpointDisabled: String?
}
