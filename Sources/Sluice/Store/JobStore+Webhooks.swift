public import Foundation
import SluiceJSON
import SluicePostgres
import SluiceSupport

extension JobStore {
    // MARK: The dispatchers' side of the outbox (sluice.webhook_deliveries)

    /// `sluice.claim_webhooks`: up to `limit` due deliveries; each is not due again before
    /// `lease` has passed (a dispatcher that dies leaves it to another).
    public func claimWebhooks(limit: Int, lease: Duration) async throws(SluiceError) -> [WebhookDelivery] {
        try await run("claimWebhooks") {
            let result = try await postgres.query("""
                SELECT id, job_id, tenant, event, url, attempt, created_at, payload, secrets, disabled_reason, traceparent
                  FROM sluice.claim_webhooks(\(limit)::int, \(Self.interval(lease))::interval)
                """)
            return try result.rows.map { row in
                WebhookDelivery(
                    id: try row.decode(UUID.self, column: "id"), jobID: try row.decode(UUID.self, column: "job_id"),
                    tenant: try row.decode(String.self, column: "tenant"), event: try row.decode(String.self, column: "event"),
                    url: try row.decode(String.self, column: "url"), attempt: try row.decode(Int.self, column: "attempt"),
                    createdAt: try row.decode(Date.self, column: "created_at"),
                    payload: Array(try row.decode(String.self, column: "payload").utf8),
                    secrets: try row.decode([String].self, column: "secrets").map(Redacted.init),
                    disabledReason: try row.decode(String?.self, column: "disabled_reason"),
                    traceparent: try row.decode(String?.self, column: "traceparent"))
            }
        }
    }

    /// `sluice.finish_webhooks`: records a group of attempt outcomes in one statement; an
    /// endpoint failing without a success for longer than `disableAfter` is disabled.
    /// - Returns: how many were recorded (an outcome for a delivery claimed again since is not).
    @discardableResult
    public func finishWebhooks(_ outcomes: [WebhookOutcome], disableAfter: Duration) async throws(SluiceError) -> Int {
        var json = JSONWriter(capacity: outcomes.count * 160)
        json.beginArray()
        for outcome in outcomes {
            json.beginObject()
            json.field("id", outcome.id.lowercasedText)
            json.field("attempt", outcome.attempt)
            json.field("outcome", outcome.kind.rawValue)
            json.field("status", outcome.status)
            json.field("error", outcome.error)
            json.field("next_at", outcome.nextAttemptAt.map(\.timeIntervalSince1970))
            json.endObject()
        }
        json.endArray()
        let payload = PostgresJSON(bytes: json.bytes)
        return try await run("finishWebhooks") {
            try await postgres.query(
                "SELECT sluice.finish_webhooks(\(payload)::jsonb, \(Self.interval(disableAfter))::interval) AS n"
            ).rows[0].decode(Int.self, column: "n")
        }
    }

    /// Deletes delivered and failed deliveries created more than `retention` ago, at most `limit`.
    /// - Returns: how many were deleted.
    public func pruneWebhooks(retention: Duration, limit: Int = 1000) async throws(SluiceError) -> Int {
        try await run("pruneWebhooks") {
            try await postgres.query(
                "SELECT sluice.prune_webhooks(now() - \(Self.interval(retention))::interval, \(limit)::int) AS n"
            ).rows[0].decode(Int.self, column: "n")
        }
    }

    // MARK: Operators (sluice webhooks …)

    /// What ``webhookDeliveries(_:)`` lists.
    public struct WebhookFilter: Sendable {
        /// Only failed deliveries.
        public var failedOnly = false
        /// Only this tenant's.
        public var tenant: String?
        /// Only deliveries created at or after this time.
        public var since: Date?
        /// At most this many, newest first.
        public var limit = 100

        public init(failedOnly: Bool = false, tenant: String? = nil, since: Date? = nil, limit: Int = 100) {
            self.failedOnly = failedOnly
            self.tenant = tenant
            self.since = since
            self.limit = limit
        }
    }

    /// Deliveries of the outbox, newest first.
    public func webhookDeliveries(_ filter: WebhookFilter) async throws(SluiceError) -> [WebhookDeliveryRecord] {
        try await run("webhookDeliveries") {
            let result = try await postgres.query("""
                SELECT d.id, d.job_id, d.tenant, d.event, d.url, d.state, d.attempts, d.next_attempt_at, d.last_attempt_at,
                       d.last_status, d.last_error, d.created_at, d.delivered_at,
                       CASE WHEN e.disabled_at IS NOT NULL THEN coalesce(e.disabled_reason, 'disabled') END AS endpoint_disabled
                  FROM sluice.webhook_deliveries d
                  LEFT JOIN sluice.webhook_endpoints e ON e.tenant = d.tenant AND e.url = d.url
                 WHERE (NOT \(filter.failedOnly) OR d.state = 'failed')
                   AND (\(filter.tenant)::text IS NULL OR d.tenant = \(filter.tenant))
                   AND (\(filter.since)::timestamptz IS NULL OR d.created_at >= \(filter.since))
                 ORDER BY d.created_at DESC, d.id DESC
                 LIMIT \(filter.limit)
                """)
            return try result.rows.map(WebhookDeliveryRecord.init(storeRow:))
        }
    }

    /// One delivery, or nil.
    public func webhookDelivery(_ id: UUID) async throws(SluiceError) -> WebhookDeliveryRecord? {
        try await run("webhookDelivery") {
            let result = try await postgres.query("""
                SELECT d.id, d.job_id, d.tenant, d.event, d.url, d.state, d.attempts, d.next_attempt_at, d.last_attempt_at,
                       d.last_status, d.last_error, d.created_at, d.delivered_at,
                       CASE WHEN e.disabled_at IS NOT NULL THEN coalesce(e.disabled_reason, 'disabled') END AS endpoint_disabled
                  FROM sluice.webhook_deliveries d
                  LEFT JOIN sluice.webhook_endpoints e ON e.tenant = d.tenant AND e.url = d.url
                 WHERE d.id = \(id)
                """)
            return try result.first.map(WebhookDeliveryRecord.init(storeRow:))
        }
    }

    /// `sluice.redeliver_webhooks`: sends these (failed or delivered) deliveries again, due now
    /// with a fresh retry schedule. Pending ones are left alone.
    /// - Returns: the ids queued again.
    public func redeliverWebhooks(_ ids: [UUID]) async throws(SluiceError) -> [UUID] {
        try await run("redeliverWebhooks") {
            try await postgres.query("SELECT sluice.redeliver_webhooks(\(ids)::uuid[]) AS id").rows.map {
                try $0.decode(UUID.self, column: "id")
            }
        }
    }

    /// Ids of failed deliveries created at or after `since` (optionally one tenant's).
    public func failedWebhookIDs(since: Date, tenant: String?) async throws(SluiceError) -> [UUID] {
        try await run("failedWebhookIDs") {
            try await postgres.query("""
                SELECT id FROM sluice.webhook_deliveries
                 WHERE state = 'failed' AND created_at >= \(since) AND (\(tenant)::text IS NULL OR tenant = \(tenant))
                 ORDER BY created_at
                """).rows.map { try $0.decode(UUID.self, column: "id") }
        }
    }
}

extension WebhookDeliveryRecord {
    init(storeRow row: PostgresRow) throws(PostgresError) {
        id = try row.decode(UUID.self, column: "id")
        jobID = try row.decode(UUID.self, column: "job_id")
        tenant = try row.decode(String.self, column: "tenant")
        event = try row.decode(String.self, column: "event")
        url = WebhookURL.redacted(try row.decode(String.self, column: "url"))
        state = try row.decode(String.self, column: "state")
        attempts = try row.decode(Int.self, column: "attempts")
        nextAttemptAt = try row.decode(Date.self, column: "next_attempt_at")
        lastAttemptAt = try row.decode(Date?.self, column: "last_attempt_at")
        lastStatus = try row.decode(Int?.self, column: "last_status")
        lastError = try row.decode(String?.self, column: "last_error")
        createdAt = try row.decode(Date.self, column: "created_at")
        deliveredAt = try row.decode(Date?.self, column: "delivered_at")
        endpointDisabled = try row.decode(String?.self, column: "endpoint_disabled")
    }
}
