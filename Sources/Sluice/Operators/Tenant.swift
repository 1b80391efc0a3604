public import Foundation

/// A tenant as operators see it (`sluice tenants list|show`): its limits, its webhook endpoint
/// and what it has queued and running now. Never its secrets.
public struct Tenant: Sendable {
    public var id: String
    public var maxConcurrency: Int
    public var maxQueuedJobs: Int
    /// The tenant's share of starts relative to other tenants with work in the same lane (fair
    /// queueing; default 1).
    public var weight: Double
    public var rpm: Int?
    public var tpm: Int?
    /// Hard budgets (UTC day and month), nil when not set.
    public var dailyTokens: Int?
    public var monthlyTokens: Int?
    public var dailyUSD: Double?
    public var monthlyUSD: Double?
    public var softFraction: Double?
    /// Soft-budget demotion: the lane and the route the tenant's jobs start in once a soft
    /// budget is reached (nil: none).
    public var softLane: Lane?
    public var softRoute: String?
    /// Held for a spent hard budget until then (the claim skips the tenant), and why.
    public var heldUntil: Date?
    public var holdReason: String?
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
        case double(Double?)
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

    /// The tenant's weight in fair queueing: while several tenants have a backlog in a lane,
    /// each is started in proportion to its weight (0 < weight ≤ ``maximumWeight``; default 1).
    public static func weight(_ value: Double) -> TenantUpdate {
        TenantUpdate(column: "weight", value: .double(value), field: "weight")
    }

    /// The largest weight a tenant may have (the `tenants_weight_valid` constraint of
    /// `sluice.tenants`).
    public static let maximumWeight: Double = 1000

    /// Jobs the tenant may have queued (≥ 1); more are refused at enqueue.
    public static func maxQueuedJobs(_ value: Int) -> TenantUpdate {
        TenantUpdate(column: "max_queued_jobs", value: .int(value), field: "max_queued")
    }

    /// The tenant's webhook endpoint (nil removes it). Setting it re-enables a disabled endpoint.
    public static func webhookURL(_ value: String?) -> TenantUpdate {
        TenantUpdate(column: "webhook_url", value: .text(value), field: "webhook_url")
    }

    /// Requests per minute of the tenant's plan (nil removes the limit).
    public static func rpm(_ value: Int?) -> TenantUpdate {
        TenantUpdate(column: "rpm", value: .int(value), field: "rpm")
    }

    /// Tokens per minute of the tenant's plan (nil removes the limit).
    public static func tpm(_ value: Int?) -> TenantUpdate {
        TenantUpdate(column: "tpm", value: .int(value), field: "tpm")
    }

    /// Hard daily token budget (UTC day; nil removes it). At the limit the tenant is held.
    public static func dailyTokens(_ value: Int?) -> TenantUpdate {
        TenantUpdate(column: "daily_token_budget_hard", value: .int(value), field: "daily_tokens")
    }

    /// Hard monthly token budget (UTC month; nil removes it).
    public static func monthlyTokens(_ value: Int?) -> TenantUpdate {
        TenantUpdate(column: "monthly_token_budget_hard", value: .int(value), field: "monthly_tokens")
    }

    /// Hard daily budget in USD (nil removes it).
    public static func dailyUSD(_ value: Double?) -> TenantUpdate {
        TenantUpdate(column: "daily_usd_budget_hard", value: .double(value), field: "daily_usd")
    }

    /// Hard monthly budget in USD (nil removes it).
    public static func monthlyUSD(_ value: Double?) -> TenantUpdate {
        TenantUpdate(column: "monthly_usd_budget_hard", value: .double(value), field: "monthly_usd")
    }

    /// Fraction of each hard budget at which the soft warning fires (0 < F ≤ 1; nil removes it).
    public static func softFraction(_ value: Double?) -> TenantUpdate {
        TenantUpdate(column: "soft_fraction", value: .double(value), field: "soft_fraction")
    }

    /// Once a soft budget is reached, the tenant's jobs start in this lane when it is lower than
    /// their own (nil: no lane demotion).
    public static func softLane(_ value: Lane?) -> TenantUpdate {
        TenantUpdate(column: "soft_lane", value: .text(value?.rawValue), field: "soft_lane")
    }

    /// Once a soft budget is reached, the tenant's jobs run through this (cheaper) route (nil:
    /// no route demotion). The route must exist.
    public static func softRoute(_ value: String?) -> TenantUpdate {
        TenantUpdate(column: "soft_route", value: .text(value), field: "soft_route")
    }

    /// Paused tenants' jobs are refused at enqueue and not claimed.
    public static func paused(_ value: Bool) -> TenantUpdate {
        TenantUpdate(column: "paused", value: .bool(value), field: "paused")
    }
}
