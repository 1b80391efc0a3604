public import Foundation

/// A tenant's rate limits and budgets (from `sluice.tenants`) with what it spent today and this
/// month (UTC, from `sluice.usage_daily`): what admission needs to decide a start.
public struct TenantLimits: Sendable, Hashable {
    public var tenant: String
    /// Requests per minute of the tenant's plan.
    public var rpm: Int?
    /// Tokens per minute of the tenant's plan.
    public var tpm: Int?
    /// Hard budgets: at the limit the tenant's queued jobs are held.
    public var dailyTokens: Int?
    public var monthlyTokens: Int?
    public var dailyUSD: Double?
    public var monthlyUSD: Double?
    /// Soft budgets: crossing one logs a warning (once per window and worker).
    public var dailyTokensSoft: Int?
    public var monthlyTokensSoft: Int?
    public var dailyUSDSoft: Double?
    public var monthlyUSDSoft: Double?
    /// Fraction of a hard budget that counts as its soft limit when none is set. Default nil
    /// (no implied soft limit).
    public var softFraction: Double?
    /// Recorded spend (settled attempts), the seed of the budget counters.
    public var spentDayTokens: Int
    public var spentMonthTokens: Int
    public var spentDayUSD: Double
    public var spentMonthUSD: Double
    /// Demotion once a soft budget is reached: jobs start in this lane when it is lower than
    /// their own (nil: no lane demotion).
    public var softLane: Lane?
    /// Demotion once a soft budget is reached: jobs run through this (cheaper) route.
    public var softRoute: String?

    /// Whether recorded spend has reached a soft limit (set, or `softFraction` of a hard one)
    /// in the current day or month.
    public var softBudgetReached: Bool {
        func reached(_ spent: Double, _ soft: Double?, _ hard: Double?) -> Bool {
            guard let limit = soft ?? hard.flatMap({ hard in softFraction.map { $0 * hard } }) else { return false }
            return spent >= limit
        }
        return reached(Double(spentDayTokens), dailyTokensSoft.map(Double.init), dailyTokens.map(Double.init))
            || reached(Double(spentMonthTokens), monthlyTokensSoft.map(Double.init), monthlyTokens.map(Double.init))
            || reached(spentDayUSD, dailyUSDSoft, dailyUSD) || reached(spentMonthUSD, monthlyUSDSoft, monthlyUSD)
    }

    public init(tenant: String, rpm: Int? = nil, tpm: Int? = nil, dailyTokens: Int? = nil, monthlyTokens: Int? = nil,
                dailyUSD: Double? = nil, monthlyUSD: Double? = nil, dailyTokensSoft: Int? = nil,
                monthlyTokensSoft: Int? = nil, dailyUSDSoft: Double? = nil, monthlyUSDSoft: Double? = nil,
                softFraction: Double? = nil, spentDayTokens: Int = 0, spentMonthTokens: Int = 0,
                spentDayUSD: Double = 0, spentMonthUSD: Double = 0) {
        self.tenant = tenant
        self.rpm = rpm
        self.tpm = tpm
        self.dailyTokens = dailyTokens
        self.monthlyTokens = monthlyTokens
        self.dailyUSD = dailyUSD
        self.monthlyUSD = monthlyUSD
        self.dailyTokensSoft = dailyTokensSoft
        self.monthlyTokensSoft = monthlyTokensSoft
        self.dailyUSDSoft = dailyUSDSoft
        self.monthlyUSDSoft = monthlyUSDSoft
        self.softFraction = softFraction
        self.spentDayTokens = spentDayTokens
        self.spentMonthTokens = spentMonthTokens
        self.spentDayUSD = spentDayUSD
        self.spentMonthUSD = spentMonthUSD
    }

    /// Whether the tenant has a USD budget (a job of a model without a price cannot start then).
    public var hasUSDBudget: Bool { dailyUSD != nil || monthlyUSD != nil }
}
