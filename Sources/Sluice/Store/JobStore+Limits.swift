public import Foundation
import SluicePostgres

extension JobStore {
    /// `sluice.limits_snapshot`: every model limit and kill switch, and every tenant with a
    /// rate limit or budget together with its recorded spend today and this month (UTC).
    public func limitsSnapshot() async throws(SluiceError) -> LimitsSnapshot {
        try await run("limitsSnapshot") {
            let result = try await postgres.query("""
                SELECT kind, provider, model, key_id, tenant, rpm, tpm, input_tpm, output_tpm, paused, daily_tokens, monthly_tokens,
                       daily_usd::float8 AS daily_usd, monthly_usd::float8 AS monthly_usd, daily_tokens_soft,
                       monthly_tokens_soft, daily_usd_soft::float8 AS daily_usd_soft,
                       monthly_usd_soft::float8 AS monthly_usd_soft, soft_fraction::float8 AS soft_fraction,
                       spent_day_tokens, spent_month_tokens, spent_day_usd::float8 AS spent_day_usd,
                       spent_month_usd::float8 AS spent_month_usd, soft_lane, soft_route
                  FROM sluice.limits_snapshot()
                """, [])
            var snapshot = LimitsSnapshot()
            for row in result.rows {
                if try row.decode(String.self, column: "kind") == "model" {
                    snapshot.models.append(ModelLimits(
                        provider: try row.decode(String.self, column: "provider"),
                        model: try row.decode(String.self, column: "model"),
                        rpm: try row.decode(Int?.self, column: "rpm"), tpm: try row.decode(Int?.self, column: "tpm"),
                        inputTPM: try row.decode(Int?.self, column: "input_tpm"),
                        outputTPM: try row.decode(Int?.self, column: "output_tpm"),
                        paused: try row.decode(Bool.self, column: "paused"),
                        keyID: (try row.decode(String?.self, column: "key_id")).flatMap { $0.isEmpty ? nil : $0 }))
                } else {
                    snapshot.tenants.append(TenantLimits(
                        tenant: try row.decode(String.self, column: "tenant"),
                        rpm: try row.decode(Int?.self, column: "rpm"), tpm: try row.decode(Int?.self, column: "tpm"),
                        dailyTokens: try row.decode(Int?.self, column: "daily_tokens"),
                        monthlyTokens: try row.decode(Int?.self, column: "monthly_tokens"),
                        dailyUSD: try row.decode(Double?.self, column: "daily_usd"),
                        monthlyUSD: try row.decode(Double?.self, column: "monthly_usd"),
                        dailyTokensSoft: try row.decode(Int?.self, column: "daily_tokens_soft"),
                        monthlyTokensSoft: try row.decode(Int?.self, column: "monthly_tokens_soft"),
                        dailyUSDSoft: try row.decode(Double?.self, column: "daily_usd_soft"),
                        monthlyUSDSoft: try row.decode(Double?.self, column: "monthly_usd_soft"),
                        softFraction: try row.decode(Double?.self, column: "soft_fraction"),
                        spentDayTokens: try row.decode(Int?.self, column: "spent_day_tokens") ?? 0,
                        spentMonthTokens: try row.decode(Int?.self, column: "spent_month_tokens") ?? 0,
                        spentDayUSD: try row.decode(Double?.self, column: "spent_day_usd") ?? 0,
                        spentMonthUSD: try row.decode(Double?.self, column: "spent_month_usd") ?? 0))
                    snapshot.tenants[snapshot.tenants.count - 1].softLane = try row.decode(String?.self, column: "soft_lane").flatMap(Lane.init(rawValue:))
                    snapshot.tenants[snapshot.tenants.count - 1].softRoute = try row.decode(String?.self, column: "soft_route")
                }
            }
            return snapshot
        }
    }

    /// A claimed job to put back without starting it (see ``deferJobs(worker:_:)``).
    public struct Deferral: Sendable {
        public var jobID: UUID
        public var attempt: Int
        /// When the job may be claimed again.
        public var runAt: Date
        /// Why it waits (shown on the job until it starts).
        public var reason: String
        /// A soft-budget demotion: the job's new lane (nil: unchanged).
        public var lane: Lane?
        /// A soft-budget demotion: the route the job runs through from now on (nil: unchanged).
        public var route: String?

        public init(jobID: UUID, attempt: Int, runAt: Date, reason: String, lane: Lane? = nil, route: String? = nil) {
            self.jobID = jobID
            self.attempt = attempt
            self.runAt = runAt
            self.reason = reason
            self.lane = lane
            self.route = route
        }
    }

    /// `sluice.defer`: puts claimed jobs the worker still holds back in the queue without
    /// consuming an attempt, each runnable again at its `runAt`, with its reason. Returns how
    /// many moved.
    @discardableResult
    public func deferJobs(worker: String, _ deferrals: [Deferral]) async throws(SluiceError) -> Int {
        guard !deferrals.isEmpty else { return 0 }
        // Sent as delays from now and added to the database's clock, so a worker whose clock
        // is off does not move the jobs' run_at (leases and schedules use the database's clock).
        let now = Date()
        let delays = deferrals.map { max(0, $0.runAt.timeIntervalSince(now)) }
        return try await run("deferJobs") {
            let result = try await postgres.query("""
                SELECT sluice.defer(\(worker), \(deferrals.map(\.jobID))::uuid[], \(deferrals.map(\.attempt))::int[], \
                ARRAY(SELECT now() + make_interval(secs => d.s) FROM unnest(\(delays)::float8[]) WITH ORDINALITY AS d(s, n) \
                ORDER BY d.n), \(deferrals.map(\.reason))::text[], \
                \(deferrals.map { $0.lane?.rawValue })::text[], \(deferrals.map(\.route))::text[]) AS n
                """)
            return try result.first?.decode(Int.self, column: "n") ?? 0
        }
    }

    /// `sluice.hold_tenant`: the claim skips the tenant until `until` (or until an operator
    /// changes its hard budgets); `reason` is shown on its queued jobs.
    public func holdTenant(_ tenant: String, until: Date, reason: String) async throws(SluiceError) {
        try await run("holdTenant") {
            _ = try await postgres.query("SELECT sluice.hold_tenant(\(tenant), \(until)::timestamptz, \(reason))")
        }
    }

    /// `sluice.set_model_limits`: creates or changes a model's limits (nil leaves a value as it
    /// is, 0 clears a limit) and kill switch; every worker applies it on its next admission.
    /// Returns the row as stored.
    ///
    /// With `keyID`, the limits of that API key of the model (a key pool).
    public func setModelLimits(provider: String, model: String, rpm: Int? = nil, tpm: Int? = nil, inputTPM: Int? = nil,
                               outputTPM: Int? = nil, paused: Bool? = nil, keyID: String? = nil) async throws(SluiceError) -> ModelLimits {
        for (field, value) in [("rpm", rpm), ("tpm", tpm), ("input_tpm", inputTPM), ("output_tpm", outputTPM)] {
            if let value, value < 0 { throw SluiceError.invalid(field, "non_negative", "must be 0 (no limit) or more (got \(value))") }
        }
        try ModelLimits(provider: provider, model: model, keyID: keyID).validate()
        if keyID != nil, paused != nil {
            throw SluiceError.invalid("paused", "model_only", "the kill switch is the model's, not one key's: pause without a key id")
        }
        return try await run("setModelLimits") {
            let result = try await postgres.query("""
                SELECT provider, model, key_id, rpm, tpm, input_tpm, output_tpm, paused
                  FROM sluice.set_model_limits(\(provider), \(model), \(rpm)::bigint, \(tpm)::bigint, \(inputTPM)::bigint, \
                \(outputTPM)::bigint, \(paused)::boolean, \(keyID ?? "")::text)
                """)
            guard let row = result.first else { throw SluiceError(code: .database, message: "set_model_limits returned no row") }
            return ModelLimits(
                provider: try row.decode(String.self, column: "provider"), model: try row.decode(String.self, column: "model"),
                rpm: try row.decode(Int?.self, column: "rpm"), tpm: try row.decode(Int?.self, column: "tpm"),
                inputTPM: try row.decode(Int?.self, column: "input_tpm"),
                outputTPM: try row.decode(Int?.self, column: "output_tpm"), paused: try row.decode(Bool.self, column: "paused"),
                keyID: (try row.decode(String?.self, column: "key_id")).flatMap { $0.isEmpty ? nil : $0 })
        }
    }

    /// `sluice.wake_deferred`: jobs of this model waiting on a deferral become runnable now
    /// (after `sluice models resume`). Returns how many.
    @discardableResult
    public func wakeDeferred(provider: String, model: String) async throws(SluiceError) -> Int {
        try await run("wakeDeferred") {
            let result = try await postgres.query("SELECT sluice.wake_deferred(\(provider), \(model)) AS n")
            return try result.first?.decode(Int.self, column: "n") ?? 0
        }
    }
}
