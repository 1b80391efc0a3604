public import Foundation

/// A tenant as operators see it (`sluice tenants list|show`): its limits, its webhook endpoint
/// and what it has queued and running now. Never its secrets.
public struct Tenant: Sendable {
    public var id: String
    public var maxConcurrency: Int
    public var maxQueuedJobs: Int
    public var rpm: Int?
    public var tpm: Int?
    public var paused: Bool
    /// The endpoint without userinfo, query or fragment.
    public var webhookURL: String?
    /// Why the tenant's endpoint is disabled, when it is.
    public var webhookDisabled: String?
    /// Signing secrets in force (2 during a rotation's grace period).
    public var activeSecrets: Int
    public var queued: Int
    public var running: Int
    public var createdAt: Date
    public var updatedAt: Date
}

/// One column of `sluice.tenants` to change (`sluice tenants set`). One constructor per column,
/// so a new setting is one more constructor and one more flag.
public struct TenantUpdate: Sendable {
    enum Value: Sendable {
        case int(Int?)
        case text(String?)
        case bool(Bool)
    }

    /// The column (a fixed name from the constructors below, never caller text).
    let column: String
    let value: Value
    /// The CLI flag / field name errors refer to.
    let field: String

    /// Jobs of the tenant running at once, across all workers (≥ 1).
    public static func maxConcurrency(_ value: Int) -> TenantUpdate {
        TenantUpdate(column: "max_concurrency", value: .int(value), field: "max_concurrency")
    }

    /// Jobs the tenant may have queued (≥ 1); more are refused at enqueue.
    public static func maxQueuedJobs(_ value: Int) -> TenantUpdate {
        TenantUpdate(column: "max_queued_jobs", value: .int(value), field: "max_queued")
    }

    /// The tenant's webhook endpoint (nil removes it). Setting it re-enables a disabled endpoint.
    public static func webhookURL(_ value: String?) -> TenantUpdate {
        TenantUpdate(column: "webhook_url", value: .text(value), field: "webhook_url")
    }

    /// Paused tenants' jobs are refused at enqueue and not claimed.
    public static func paused(_ value: Bool) -> TenantUpdate {
        TenantUpdate(column: "paused", value: .bool(value), field: "paused")
    }
}
