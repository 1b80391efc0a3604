/// Every configured limit at one moment: model limits and kill switches, and the tenants that
/// have a rate limit or a budget. Workers cache it until `sluice_limits` is notified.
public struct LimitsSnapshot: Sendable {
    public var models: [ModelLimits]
    public var tenants: [TenantLimits]

    public init(models: [ModelLimits] = [], tenants: [TenantLimits] = []) {
        self.models = models
        self.tenants = tenants
    }

    /// Adds the configuration file's model and key-pool limits that the database does not
    /// override: an entry of the file counts unless `sluice.model_limits` has a row for the
    /// same provider, model and key (rows set with `sluice limits set` win).
    public mutating func addFileLimits(_ fileLimits: [ModelLimits]) {
        struct Identity: Hashable { let provider, model: String; let keyID: String? }
        let stored = Set(models.map { Identity(provider: $0.provider, model: $0.model, keyID: $0.keyID) })
        models += fileLimits.filter { !stored.contains(Identity(provider: $0.provider, model: $0.model, keyID: $0.keyID)) }
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
