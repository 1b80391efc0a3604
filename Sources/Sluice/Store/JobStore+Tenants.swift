import Foundation
import SluicePostgres
public import SluiceSupport

extension JobStore {
    static let tenantColumns = """
        t.id, t.max_concurrency, t.max_queued_jobs, t.weight, t.rpm, t.tpm, t.paused, t.webhook_url, t.created_at, t.updated_at,
        t.daily_token_budget_hard, t.monthly_token_budget_hard, t.daily_usd_budget_hard::float8 AS daily_usd,
        t.monthly_usd_budget_hard::float8 AS monthly_usd, t.soft_fraction::float8 AS soft_fraction, t.soft_lane, t.soft_route,
        CASE WHEN t.held_until > now() THEN t.held_until END AS held_until, CASE WHEN t.held_until > now() THEN t.hold_reason END AS hold_reason,
        (SELECT CASE WHEN e.disabled_at IS NOT NULL THEN coalesce(e.disabled_reason, 'disabled') END
           FROM sluice.webhook_endpoints e WHERE e.tenant = t.id AND e.url = t.webhook_url) AS webhook_disabled,
        (SELECT count(*) FROM sluice.tenant_secrets s WHERE s.tenant = t.id AND (s.expires_at IS NULL OR s.expires_at > now())) AS active_secrets,
        sluice.queue_depth(t.id) AS queued,
        (SELECT count(*) FROM sluice.jobs j WHERE j.tenant = t.id AND j.state = 'running') AS running
        """

    /// Every tenant, by id.
    public func tenants() async throws(SluiceError) -> [Tenant] {
        try await run("tenants") {
            try await postgres.query("SELECT \(unescaped: Self.tenantColumns) FROM sluice.tenants t ORDER BY t.id")
                .rows.map(Tenant.init(storeRow:))
        }
    }

    /// The tenant, or nil.
    public func tenant(_ id: String) async throws(SluiceError) -> Tenant? {
        try await run("tenant") {
            try await postgres.query("SELECT \(unescaped: Self.tenantColumns) FROM sluice.tenants t WHERE t.id = \(id)")
                .first.map(Tenant.init(storeRow:))
        }
    }

    /// Creates a tenant with default limits, `updates` applied, and `secret` as its webhook
    /// signing secret. Throws `.conflict` when it exists, `.invalidArgument` for a bad id or value.
    public func createTenant(_ id: String, updates: [TenantUpdate], secret: Redacted) async throws(SluiceError) {
        guard id.range(of: "^[a-z0-9][a-z0-9_-]{0,62}$", options: .regularExpression) != nil else {
            throw SluiceError.argument("tenant", "format", "tenant id '\(id)' must be 1–63 of a-z, 0-9, _ and -, starting with a letter or digit")
        }
        try await validate(updates)
        try await run("createTenant") {
            try await postgres.withTransaction { connection in
                let inserted = try await connection.query(
                    "INSERT INTO sluice.tenants (id) VALUES (\(id)) ON CONFLICT (id) DO NOTHING RETURNING id")
                guard !inserted.rows.isEmpty else {
                    throw SluiceError(code: .conflict, message: "tenant \(id) exists already", field: "tenant", rule: "unique")
                }
                _ = try await connection.query("INSERT INTO sluice.tenant_secrets (tenant, secret) VALUES (\(id), \(secret.revealed))")
                if !updates.isEmpty {
                    let (sql, binds) = Self.updateStatement(id, updates)
                    _ = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds))
                }
            }
        }
    }

    /// Applies `updates` to the tenant in one statement. Throws `.notFound` for an unknown tenant.
    public func updateTenant(_ id: String, _ updates: [TenantUpdate]) async throws(SluiceError) {
        guard !updates.isEmpty else { return }
        try await validate(updates)
        try await run("updateTenant") {
            try await postgres.withTransaction { connection in
                let (sql, binds) = Self.updateStatement(id, updates)
                let result = try await connection.query(PostgresQuery(unsafeSQL: sql + " RETURNING t.webhook_url", binds: binds))
                guard let row = result.first else { throw Self.unknownTenant(id) }
                if updates.contains(where: { $0.column == "webhook_url" }), let url = try row.decode(String?.self, column: "webhook_url") {
                    // A new (or the same) URL set by an operator: the endpoint starts healthy.
                    _ = try await connection.query("DELETE FROM sluice.webhook_endpoints WHERE tenant = \(id) AND url = \(url)")
                }
            }
        }
    }

    /// Makes `secret` the tenant's signing secret; the secrets in force until now keep signing
    /// (a second signature) for `grace`, then expire.
    public func rotateTenantSecret(_ id: String, secret: Redacted, grace: Duration) async throws(SluiceError) {
        try await run("rotateTenantSecret") {
            try await postgres.withTransaction { connection in
                let exists = try await connection.query("SELECT 1 FROM sluice.tenants WHERE id = \(id) FOR UPDATE")
                guard !exists.rows.isEmpty else { throw Self.unknownTenant(id) }
                _ = try await connection.query("""
                    UPDATE sluice.tenant_secrets
                       SET expires_at = least(coalesce(expires_at, 'infinity'), now() + \(Self.interval(grace))::interval)
                     WHERE tenant = \(id)
                    """)
                _ = try await connection.query("DELETE FROM sluice.tenant_secrets WHERE tenant = \(id) AND expires_at <= now()")
                _ = try await connection.query("INSERT INTO sluice.tenant_secrets (tenant, secret) VALUES (\(id), \(secret.revealed))")
            }
        }
    }

    static func unknownTenant(_ id: String) -> SluiceError {
        SluiceError(code: .notFound, message: "unknown tenant \(id): create it with `sluice tenants create \(id)`",
                    field: "tenant", rule: "exists")
    }

    /// Checks values before any statement runs: positive limits, a valid webhook URL.
    func validate(_ updates: [TenantUpdate]) async throws(SluiceError) {
        for update in updates {
            switch update.value {
            case .int(let value?) where value < 1:
                throw SluiceError.argument(update.field, "range", "\(update.field) must be at least 1 (got \(value))")
            case .double(let value?) where update.column == "weight" && !(value > 0 && value <= TenantUpdate.maximumWeight):
                throw SluiceError.argument(update.field, "range",
                                           "\(update.field) must be above 0 and at most \(Int(TenantUpdate.maximumWeight)) (got \(value))")
            case .double(let value?) where update.column == "soft_fraction" && !(value > 0 && value <= 1):
                throw SluiceError.argument(update.field, "range", "\(update.field) must be a fraction above 0 and at most 1 (got \(value))")
            case .double(let value?) where !(value > 0) || !value.isFinite:
                throw SluiceError.argument(update.field, "range", "\(update.field) must be a positive amount (got \(value))")
            case .text(let lane?) where update.column == "soft_lane" && Lane(rawValue: lane).map({ $0 == .interactive }) ?? true:
                throw SluiceError.argument("soft_lane", "known", "soft_lane must be high, normal or batch (got \(lane))")
            case .text(let route?) where update.column == "soft_route":
                let known = try await run("updateTenant") {
                    try await postgres.query("SELECT count(*)::int AS n FROM sluice.routes WHERE name = \(route)").rows[0].decode(Int.self, column: "n")
                }
                if known == 0 { throw SluiceError.argument("soft_route", "known", "unknown route \(route) (sluice routes show lists them)") }
            case .text(let url?) where update.column == "webhook_url":
                let problem = try await run("updateTenant") {
                    try await postgres.query("""
                        SELECT sluice.webhook_url_problem(\(url), s.allow_http_webhooks) AS problem FROM sluice.settings s
                        """).rows[0].decode(String?.self, column: "problem")
                }
                if let problem {
                    let message = problem == "scheme"
                        ? "must be https (http only when sluice.settings.allow_http_webhooks is on)"
                        : "is not an absolute http(s) URL"
                    throw SluiceError.argument("webhook_url", problem, "webhook_url: \(WebhookURL.redacted(url)) \(message)")
                }
            default:
                break
            }
        }
    }

    /// `UPDATE sluice.tenants t SET <column> = $n, …, updated_at = clock_timestamp() WHERE t.id = $1`
    /// (the clock at the change: `sluice.defer` compares it with the start of a claim that may
    /// have begun while this transaction ran).
    static func updateStatement(_ id: String, _ updates: [TenantUpdate]) -> (String, [(any PostgresEncodable)?]) {
        var binds: [(any PostgresEncodable)?] = [id]
        var sets: [String] = []
        for update in updates {
            switch update.value {
            case .int(let value): binds.append(value)
            case .double(let value): binds.append(value)
            case .text(let value): binds.append(value)
            case .bool(let value): binds.append(value)
            }
            sets.append("\(update.column) = $\(binds.count)")
        }
        sets.append("updated_at = clock_timestamp()")
        return ("UPDATE sluice.tenants t SET \(sets.joined(separator: ", ")) WHERE t.id = $1", binds)
    }
}

extension Tenant {
    init(storeRow row: PostgresRow) throws(PostgresError) {
        id = try row.decode(String.self, column: "id")
        maxConcurrency = try row.decode(Int.self, column: "max_concurrency")
        maxQueuedJobs = try row.decode(Int.self, column: "max_queued_jobs")
        weight = try row.decode(Double.self, column: "weight")
        rpm = try row.decode(Int?.self, column: "rpm")
        tpm = try row.decode(Int?.self, column: "tpm")
        dailyTokens = try row.decode(Int?.self, column: "daily_token_budget_hard")
        monthlyTokens = try row.decode(Int?.self, column: "monthly_token_budget_hard")
        dailyUSD = try row.decode(Double?.self, column: "daily_usd")
        monthlyUSD = try row.decode(Double?.self, column: "monthly_usd")
        softFraction = try row.decode(Double?.self, column: "soft_fraction")
        softLane = try row.decode(String?.self, column: "soft_lane").flatMap(Lane.init(rawValue:))
        softRoute = try row.decode(String?.self, column: "soft_route")
        heldUntil = try row.decode(Date?.self, column: "held_until")
        holdReason = try row.decode(String?.self, column: "hold_reason")
        paused = try row.decode(Bool.self, column: "paused")
        webhookURL = try row.decode(String?.self, column: "webhook_url").map(WebhookURL.redacted)
        webhookDisabled = try row.decode(String?.self, column: "webhook_disabled")
        activeSecrets = try row.decode(Int.self, column: "active_secrets")
        queued = try row.decode(Int.self, column: "queued")
        running = try row.decode(Int.self, column: "running")
        createdAt = try row.decode(Date.self, column: "created_at")
        updatedAt = try row.decode(Date.self, column: "updated_at")
    }
}
