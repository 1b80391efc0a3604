public import Metrics
public import Sluice
import SluiceSupport

/// Every metric a worker process emits, in one place: the catalog (``definitions``, with the
/// names reserved for features being added in ``planned``) and the handles the worker records
/// into.
///
/// Recording goes through swift-metrics (`Counter`, `FloatingPointCounter`, `Timer`, `Meter`,
/// `Gauge`), so this library does not know the backend: the `sluice` CLI bootstraps
/// `MetricsSystem` with a Prometheus factory and serves `/metrics`; a library user may bootstrap
/// any other backend, and without one every call is a no-op.
///
/// Labels are bounded: lanes (4), providers and models (those registered, which enqueue
/// validates against), outcomes, error classes (12), token kinds (4) and statements. No
/// per-job, per-tenant or per-user label.
public final class WorkerMetrics: Sendable {
    // MARK: Names

    /// Jobs claimed by this process.
    public static let jobsClaimed = "sluice_jobs_claimed_total"
    /// Attempts finished by this process, by `outcome` (`succeeded`, `retried`, `dead`, `cancelled`).
    public static let attempts = "sluice_job_attempts_total"
    /// Jobs whose expired lease this process returned to the queue (or dead-lettered).
    public static let jobsRescued = "sluice_jobs_rescued_total"
    /// Seconds from the moment a job became runnable to its claim.
    public static let pickupLatency = "sluice_job_pickup_latency_seconds"
    /// Seconds of each provider call, whatever its outcome.
    public static let providerLatency = "sluice_provider_latency_seconds"
    /// Seconds from the request to the first token of streamed responses.
    public static let timeToFirstToken = "sluice_provider_ttft_seconds"
    /// Failed provider calls by `error_class`.
    public static let providerErrors = "sluice_provider_errors_total"
    /// HTTP 429 (rate-limited) responses received.
    public static let rateLimited = "sluice_provider_rate_limited_total"
    /// Seconds of retry delay that came from a provider's `Retry-After`.
    public static let retryAfterSeconds = "sluice_provider_retry_after_seconds_total"
    /// Provider calls running now.
    public static let callsInFlight = "sluice_provider_calls_in_flight"
    /// Tokens by `kind` (`input`, `output`, `cache_read`, `cache_write`).
    public static let tokens = "sluice_tokens_total"
    /// Cost in USD from the price table.
    public static let cost = "sluice_cost_usd_total"
    /// Seconds per store statement, by `statement` (`claim`, `finish_attempts`).
    public static let statementDuration = "sluice_store_statement_duration_seconds"
    /// Jobs per claim statement.
    public static let claimBatch = "sluice_claim_batch_jobs"
    /// Job slots of this process (its concurrency); the sum over processes is the fleet's capacity.
    public static let slots = "sluice_worker_slots"
    /// Jobs running in this process.
    public static let jobsRunning = "sluice_worker_jobs_running"
    /// Ordinary jobs this process lets run now: its slots minus the interactive reserve, lower
    /// while the load governor keeps CPU headroom (scheduling lag above its target).
    public static let ordinaryLimit = "sluice_worker_ordinary_limit"
    /// 1 while this process drains after SIGTERM.
    public static let draining = "sluice_worker_draining"
    /// Runnable queued jobs per lane (sampled by the one elected process).
    public static let queueDepth = "sluice_queue_depth"
    /// Queued jobs scheduled for later (`run_at` in the future) per lane (sampled by the elected process).
    public static let queueScheduled = "sluice_queue_scheduled"
    /// Age in seconds of the oldest runnable queued job per lane, 0 when none (sampled by the elected process).
    public static let queueOldestAge = "sluice_queue_oldest_age_seconds"
    /// 1 on the process that currently samples the queue, 0 elsewhere.
    public static let queueSampler = "sluice_queue_sampler"
    /// Claimed jobs admission put back to wait, by `limit`.
    public static let rateLimitWaits = "sluice_rate_limit_waits_total"
    /// Jobs demoted because their tenant reached a soft budget, by `to` (lane, route).
    public static let budgetDemotions = "sluice_budget_demotions_total"
    /// Route jobs that left a target, by the target and `reason` (the error class of the failed
    /// call, or what admission said: breaker, cooldown, window, paused, unpriced, rpm, tpm, …).
    public static let routeFallbacks = "sluice_route_fallbacks_total"

    private static let latencyBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600]
    private static let pickupBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]
    private static let ttftBuckets: [Double] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60]
    private static let statementBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    private static let batchBuckets: [Double] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000]

    /// What this build emits (help texts and buckets for the backend).
    public static let definitions: [MetricDefinition] = [
        .init(jobsClaimed, .counter, labels: ["lane", "provider", "model"], help: "Jobs claimed by this worker process."),
        .init(attempts, .counter, labels: ["lane", "provider", "model", "outcome"],
              help: "Attempts finished by this worker process, by outcome: succeeded, retried, dead, cancelled."),
        .init(jobsRescued, .counter, help: "Jobs with an expired lease this process returned to the queue or dead-lettered."),
        .init(pickupLatency, .histogram, labels: ["lane"], help: "Seconds from a job becoming runnable to its claim.", buckets: pickupBuckets),
        .init(providerLatency, .histogram, labels: ["provider", "model"], help: "Seconds per provider call, whatever its outcome.",
              buckets: latencyBuckets),
        .init(timeToFirstToken, .histogram, labels: ["provider", "model"], help: "Seconds to the first token of streamed responses.",
              buckets: ttftBuckets),
        .init(providerErrors, .counter, labels: ["provider", "model", "error_class"], help: "Failed provider calls by error class."),
        .init(rateLimited, .counter, labels: ["provider", "model"], help: "HTTP 429 responses received from providers."),
        .init(retryAfterSeconds, .counter, labels: ["provider", "model"],
              help: "Seconds of retry delay set by providers' Retry-After headers."),
        .init(callsInFlight, .gauge, labels: ["provider"], help: "Provider calls running now."),
        .init(tokens, .counter, labels: ["provider", "model", "kind"], help: "Tokens by kind: input, output, cache_read, cache_write."),
        .init(cost, .counter, labels: ["provider", "model"], help: "Cost in USD from the price table."),
        .init(statementDuration, .histogram, labels: ["statement"], help: "Seconds per store statement: claim, finish_attempts.",
              buckets: statementBuckets),
        .init(claimBatch, .histogram, help: "Jobs returned per claim statement that returned any.", buckets: batchBuckets),
        .init(slots, .gauge, help: "Job slots (concurrency) of this worker process."),
        .init(jobsRunning, .gauge, help: "Jobs running in this worker process."),
        .init(ordinaryLimit, .gauge,
              help: "Ordinary jobs this worker process lets run now: slots minus the interactive reserve, lower while the load governor keeps CPU headroom."),
        .init(draining, .gauge, help: "1 while this worker process drains after SIGTERM."),
        .init(queueDepth, .gauge, labels: ["lane"], help: "Runnable queued jobs per lane (sampled by one elected process)."),
        .init(queueScheduled, .gauge, labels: ["lane"], help: "Queued jobs scheduled for later per lane (sampled by one elected process)."),
        .init(queueOldestAge, .gauge, labels: ["lane"],
              help: "Age in seconds of the oldest runnable queued job per lane, 0 when none (sampled by one elected process)."),
        .init(queueSampler, .gauge, help: "1 on the worker process that samples the queue, 0 elsewhere."),
        .init(rateLimitWaits, .counter, labels: ["provider", "model", "limit"],
              help: "Claimed jobs put back to wait (no attempt used), by what held them: rpm, tpm, itpm, otpm, tenant_rpm, tenant_tpm, cooldown, window, breaker, budget, paused, unpriced, unavailable, pool."),
        .init(routeFallbacks, .counter, labels: ["provider", "model", "reason"],
              help: "Route jobs that moved on from a target: after a failed call (reason: its error class) or passed over by admission (reason: breaker, cooldown, window, paused, unpriced, rpm, tpm, …)."),
        .init(budgetDemotions, .counter, labels: ["to"],
              help: "Jobs demoted at start because their tenant reached a soft budget: to a lower lane (lane) or a cheaper route (route)."),
    ]

    /// Names reserved for features being built now (rate-limit buckets, circuit breakers,
    /// budgets, webhooks), with their labels and meaning. Nothing records them yet; whoever
    /// adds the feature records into exactly these names through swift-metrics and moves the
    /// entry to ``definitions``. `deploy/prometheus/alerts.yml` and the Grafana dashboard
    /// already refer to them.
    public static let planned: [MetricDefinition] = [
        .init("sluice_rate_limit_bucket_fill_ratio", .gauge, labels: ["provider", "model", "limit"],
              help: "Fill of a rate-limit bucket, 0 (empty) to 1 (full), by limit: rpm, tpm."),
        .init("sluice_rate_limit_wait_seconds", .histogram, labels: ["provider", "model"],
              help: "Seconds a job waited for rate-limit capacity.", buckets: latencyBuckets),
        .init("sluice_circuit_breaker_state", .gauge, labels: ["provider", "model"],
              help: "Circuit breaker state: 0 closed, 1 half-open, 2 open."),
        .init("sluice_circuit_breaker_transitions_total", .counter, labels: ["provider", "model", "to"],
              help: "Circuit breaker transitions by new state: closed, half_open, open."),
        .init("sluice_budget_used_ratio", .gauge, labels: ["tenant", "period"],
              help: "Spent fraction of a tenant's budget (only tenants an operator lists)."),
        .init("sluice_budget_rejections_total", .counter, labels: ["period"],
              help: "Jobs refused or parked because a budget was exhausted."),
        .init("sluice_webhook_deliveries_total", .counter, labels: ["outcome"],
              help: "Webhook delivery attempts by outcome: delivered, retried, failed, disabled."),
        .init("sluice_webhook_delivery_duration_seconds", .histogram,
              help: "Seconds per webhook delivery attempt.", buckets: latencyBuckets),
    ]

    // MARK: Handles

    /// Counters of one (lane, provider, model).
    struct JobHandles: Sendable {
        let claimed: Counter
        let succeeded: Counter
        let retried: Counter
        let dead: Counter
        let cancelled: Counter
    }

    /// Instruments of one (provider, model).
    struct CallHandles: Sendable {
        let latency: Metrics.Timer
        let ttft: Metrics.Timer
        let rateLimited: Counter
        let retryAfter: FloatingPointCounter
        let input: Counter
        let output: Counter
        let cacheRead: Counter
        let cacheWrite: Counter
        let cost: FloatingPointCounter
    }

    private struct JobKey: Hashable {
        let lane: Lane
        let provider: String
        let model: String
    }

    private struct CallKey: Hashable {
        let provider: String
        let model: String
    }

    private struct ErrorKey: Hashable {
        let provider: String
        let model: String
        let errorClass: ErrorClass
    }

    private let jobHandles = Locked<[JobKey: JobHandles]>([:])
    private let callHandles = Locked<[CallKey: CallHandles]>([:])
    private let errorHandles = Locked<[ErrorKey: Counter]>([:])
    private let inFlightHandles = Locked<[String: Meter]>([:])
    private let pickupHandles: [Lane: Metrics.Timer]
    let claimDuration: Metrics.Timer
    let finishDuration: Metrics.Timer
    let claimBatchSize: Recorder
    let rescued: Counter
    let slotsGauge: Gauge
    let runningGauge: Gauge
    let ordinaryLimitGauge: Gauge
    let drainingGauge: Gauge

    /// Creates the handles with `MetricsSystem.factory` (bootstrap the backend first).
    public init() {
        var pickup: [Lane: Metrics.Timer] = [:]
        for lane in Lane.allCases {
            pickup[lane] = Metrics.Timer(label: Self.pickupLatency, dimensions: [("lane", lane.rawValue)])
        }
        pickupHandles = pickup
        claimDuration = Metrics.Timer(label: Self.statementDuration, dimensions: [("statement", "claim")])
        finishDuration = Metrics.Timer(label: Self.statementDuration, dimensions: [("statement", "finish_attempts")])
        claimBatchSize = Recorder(label: Self.claimBatch, aggregate: true)
        rescued = Counter(label: Self.jobsRescued)
        slotsGauge = Gauge(label: Self.slots)
        runningGauge = Gauge(label: Self.jobsRunning)
        ordinaryLimitGauge = Gauge(label: Self.ordinaryLimit)
        drainingGauge = Gauge(label: Self.draining)
    }

    func job(_ job: Job) -> JobHandles {
        let key = JobKey(lane: job.lane, provider: job.provider, model: job.model)
        if let handles = jobHandles.withLock({ $0[key] }) { return handles }
        let base = [("lane", job.lane.rawValue), ("provider", job.provider), ("model", job.model)]
        func outcome(_ name: String) -> Counter { Counter(label: Self.attempts, dimensions: base + [("outcome", name)]) }
        let handles = JobHandles(
            claimed: Counter(label: Self.jobsClaimed, dimensions: base),
            succeeded: outcome("succeeded"), retried: outcome("retried"), dead: outcome("dead"), cancelled: outcome("cancelled"))
        return Self.cached(handles, for: key, in: jobHandles)
    }

    func call(provider: String, model: String) -> CallHandles {
        let key = CallKey(provider: provider, model: model)
        if let handles = callHandles.withLock({ $0[key] }) { return handles }
        let base = [("provider", provider), ("model", model)]
        func tokens(_ kind: String) -> Counter { Counter(label: Self.tokens, dimensions: base + [("kind", kind)]) }
        let handles = CallHandles(
            latency: Metrics.Timer(label: Self.providerLatency, dimensions: base),
            ttft: Metrics.Timer(label: Self.timeToFirstToken, dimensions: base),
            rateLimited: Counter(label: Self.rateLimited, dimensions: base),
            retryAfter: FloatingPointCounter(label: Self.retryAfterSeconds, dimensions: base),
            input: tokens("input"), output: tokens("output"), cacheRead: tokens("cache_read"), cacheWrite: tokens("cache_write"),
            cost: FloatingPointCounter(label: Self.cost, dimensions: base))
        return Self.cached(handles, for: key, in: callHandles)
    }

    func error(provider: String, model: String, errorClass: ErrorClass) -> Counter {
        let key = ErrorKey(provider: provider, model: model, errorClass: errorClass)
        if let counter = errorHandles.withLock({ $0[key] }) { return counter }
        let counter = Counter(label: Self.providerErrors,
                              dimensions: [("provider", provider), ("model", model), ("error_class", errorClass.rawValue)])
        return Self.cached(counter, for: key, in: errorHandles)
    }

    func inFlight(provider: String) -> Meter {
        if let meter = inFlightHandles.withLock({ $0[provider] }) { return meter }
        let meter = Meter(label: Self.callsInFlight, dimensions: [("provider", provider)])
        return Self.cached(meter, for: provider, in: inFlightHandles)
    }

    /// The cached value for `key`, or `value` once stored (the first of two racing creators wins;
    /// swift-metrics hands both the same underlying series).
    private static func cached<Key: Hashable, Value>(_ value: Value, for key: Key, in cache: Locked<[Key: Value]>) -> Value {
        cache.withLock { entries in
            if let existing = entries[key] { return existing }
            entries[key] = value
            return value
        }
    }

    func pickup(_ lane: Lane) -> Metrics.Timer { pickupHandles[lane]! }

    /// A job admission put back, by what held it (a bounded set of limit names).
    func routeFallback(provider: String, model: String, reason: String) -> Counter {
        Counter(label: Self.routeFallbacks, dimensions: [("provider", provider), ("model", model), ("reason", reason)])
    }

    func budgetDemotion(to kind: String) -> Counter {
        Counter(label: Self.budgetDemotions, dimensions: [("to", kind)])
    }

    func rateLimitWait(provider: String, model: String, limit: String) -> Counter {
        Counter(label: Self.rateLimitWaits, dimensions: [("provider", provider), ("model", model), ("limit", limit)])
    }

    /// Records usage and cost of one call (successful or not).
    func record(usage: Usage?, cost: Double?, handles: CallHandles) {
        if let usage {
            if usage.inputTokens > 0 { handles.input.increment(by: usage.inputTokens) }
            if usage.outputTokens > 0 { handles.output.increment(by: usage.outputTokens) }
            if usage.cacheReadTokens > 0 { handles.cacheRead.increment(by: usage.cacheReadTokens) }
            if usage.cacheWriteTokens > 0 { handles.cacheWrite.increment(by: usage.cacheWriteTokens) }
        }
        if let cost, cost > 0 { handles.cost.increment(by: cost) }
    }
}
