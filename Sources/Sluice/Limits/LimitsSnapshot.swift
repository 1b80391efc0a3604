/// Every configured limit at one moment: model limits and kill switches, and the tenants that
/// have a rate limit or a budget. Workers cache it until `sluice_limits` is notified.
public struct LimitsSnapshot: Sendable {
    public var models: [ModelLimits]
    public var tenants: [TenantLimits]

    public init(models: [ModelLimits] = [], tenants: [TenantLimits] = []) {
        self.models = models
        self.tenants = tenants
    }

    /// Whether anything needs a bucket (and so Redis).
    public var hasRateLimitsOrBudgets: Bool {
        models.contains(where: \.hasRateLimit) || !tenants.isEmpty
    }

    /// Lookup tables.
    public func indexed() -> (models: [String: ModelLimits], tenants: [String: TenantLimits]) {
        (Dictionary(models.map { ("\($0.provider)/\($0.model)", $0) }, uniquingKeysWith: { _, b in b }),
         Dictionary(tenants.map { ($0.tenant, $0) }, uniquingKeysWith: { _, b in b }))
    }
}
