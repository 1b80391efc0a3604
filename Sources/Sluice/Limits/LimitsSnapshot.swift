/// Every configured limit at one moment: model limits and kill switches, and the tenants that
/// have a rate limit or a budget. Workers cache it until `sluice_limits` is notified.
public struct LimitsSnapshot: Sendable {
    public var models: [ModelLimits]
    public var tenants: [TenantLimits]

    public init(models: [ModelLimits] = [], tenants: [TenantLimits] = []) {
        self.models = models
        self.tenants = tenants
    }

    /// Adds the configuration file's limits (`limits.models`, with their `keys`) that
    /// PostgreSQL does not override: a row of `sluice.model_limits` replaces the file's entry for
    /// the same provider/model and API key (the model's own limits, or one key of its pool).
    public mutating func addFileLimits(_ file: [ModelLimits]) {
        let stored = Set(models.map { "\($0.provider)/\($0.model) \($0.keyID ?? "")" })
        models += file.filter { !stored.contains("\($0.provider)/\($0.model) \($0.keyID ?? "")") }
    }

    /// Whether anything needs a bucket (and so Redis).
    public var hasRateLimitsOrBudgets: Bool {
        models.contains(where: \.hasRateLimit) || !tenants.isEmpty
    }

    /// Lookup tables: the models' own limits by `provider/model`, tenants by id, and each
    /// model's API-key pool (its keys' limits, sorted by key id) by `provider/model`.
    public func indexed() -> Index {
        var pools: [String: [ModelLimits]] = [:]
        for m in models where m.keyID != nil && m.hasRateLimit { pools["\(m.provider)/\(m.model)", default: []].append(m) }
        return Index(models: Dictionary(models.filter { $0.keyID == nil }.map { ("\($0.provider)/\($0.model)", $0) }, uniquingKeysWith: { _, b in b }),
                     tenants: Dictionary(tenants.map { ($0.tenant, $0) }, uniquingKeysWith: { _, b in b }),
                     pools: pools.mapValues { $0.sorted { ($0.keyID ?? "") < ($1.keyID ?? "") } })
    }

    /// See ``indexed()``.
    public struct Index: Sendable {
        public var models: [String: ModelLimits]
        public var tenants: [String: TenantLimits]
        public var pools: [String: [ModelLimits]]
    }
}
