public import Foundation
import Instrumentation
import Synchronization
public import ServiceContextModule
public import Sluice
public import Tracing

/// Spans of a job's run, through swift-distributed-tracing: they continue the trace whose W3C
/// `traceparent` the job was enqueued with, and cost nothing while no tracer is bootstrapped
/// (`sluice worker --otlp-endpoint`, or `OTEL_EXPORTER_OTLP_ENDPOINT`, bootstraps one).
///
/// For each claimed job: `sluice.job` (consumer; job id, tenant, lane, attempt, provider, model),
/// with children `sluice.queue_wait` (from when the job became runnable to its claim, on the
/// database's clock), `sluice.admission` (limits: `sluice.admission.outcome` is `start` or the
/// limit that deferred it), `sluice.provider_call` (client; TTFT, tokens, cost, error class) and
/// `sluice.result_write` (from the outcome's hand-over to the group commit until its group is
/// written; it may end after `sluice.job`). The provider call's own context is what the request's
/// `traceparent` header carries.
///
/// Webhook deliveries happen later, in the dispatcher: each attempt is a `sluice.webhook_delivery`
/// span (client) in the trace the job was enqueued with (a child of the enqueuer's span, since
/// the job's own span is long over), and the request carries its `traceparent`.
public enum JobTracing {
    /// A wall-clock instant for spans that started before the worker saw them.
    struct WallInstant: TracerInstant {
        var nanosecondsSinceEpoch: UInt64
        init(_ date: Date) { nanosecondsSinceEpoch = UInt64(max(0, date.timeIntervalSince1970) * 1_000_000_000) }
        static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch }
    }

    struct Headers: Extractor, Injector {
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
    }

    /// Whether a tracer is bootstrapped; without one the job path skips span bookkeeping
    /// altogether (no task-local context per job). Read from ``refresh()``'s cache: asking
    /// `InstrumentationSystem` takes its lock and a dynamic cast, four times per job (~1 % of a
    /// worker's CPU at 10k jobs/s).
    static var enabled: Bool { tracerBootstrapped.load(ordering: .relaxed) }

    private static let tracerBootstrapped = Atomic<Bool>(false)

    /// Looks again at whether a tracer is bootstrapped. Called when a worker or webhook
    /// dispatcher is created: a process bootstraps its tracer (once, at start) before those.
    static func refresh() {
        tracerBootstrapped.store(!(InstrumentationSystem.tracer is NoOpTracer), ordering: .relaxed)
    }

    /// The context the job was enqueued in (its `traceparent`), or a new trace.
    public static func context(of job: Job) -> ServiceContext {
        var context = ServiceContext.topLevel
        if let traceparent = job.traceparent {
            InstrumentationSystem.instrument.extract(["traceparent": traceparent], into: &context, using: Headers())
        }
        return context
    }

    /// Runs `body` inside the job's `sluice.job` span (after recording its queue wait).
    public static func withJobSpan<T>(_ job: Job, isolation: isolated (any Actor)? = #isolation,
                                      _ body: () async -> T) async -> T {
        guard enabled else { return await body() }
        return await withSpan("sluice.job", context: context(of: job), ofKind: .consumer, isolation: isolation) { span in
            span.attributes["sluice.job_id"] = job.id.uuidString.lowercased()
            span.attributes["sluice.tenant"] = job.tenant
            span.attributes["sluice.lane"] = job.lane.rawValue
            span.attributes["sluice.attempt"] = job.attempt
            span.attributes["sluice.provider"] = job.provider
            span.attributes["sluice.model"] = job.model
            if let claimedAt = job.startedAt {
                let wait = startSpan("sluice.queue_wait", context: span.context, at: WallInstant(min(job.runAt, claimedAt)))
                wait.end(at: WallInstant(claimedAt))
            }
            return await body()
        }
    }

    /// The `traceparent` to send to the provider: the current span's (the provider call's)
    /// when a tracer is bootstrapped, else the one the job was enqueued with.
    public static func outgoingTraceparent(fallback: String?) -> String? {
        guard let context = ServiceContext.current else { return fallback }
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: Headers())
        return headers["traceparent"] ?? fallback
    }

    /// Runs one provider call in a `sluice.provider_call` span whose context the request's
    /// `traceparent` header carries; records TTFT, tokens, cost, HTTP status and error class.
    public static func providerCall(_ call: ProviderCall, _ perform: (ProviderCall) async throws -> ProviderResult) async throws -> ProviderResult {
        guard enabled else { return try await perform(call) }
        return try await withSpan("sluice.provider_call", ofKind: .client) { span in
            var call = call
            call.traceparent = outgoingTraceparent(fallback: call.traceparent)
            span.attributes["sluice.provider"] = call.provider
            span.attributes["sluice.model"] = call.model
            do {
                let result = try await perform(call)
                if let ttft = result.timeToFirstToken {
                    span.attributes["sluice.ttft_ms"] = Double(ttft.components.seconds) * 1000 + Double(ttft.components.attoseconds) / 1e15
                }
                span.attributes["sluice.input_tokens"] = result.usage.inputTokens
                span.attributes["sluice.output_tokens"] = result.usage.outputTokens
                if let cost = result.costUSD { span.attributes["sluice.cost_usd"] = cost }
                if let status = result.httpStatus { span.attributes["http.response.status_code"] = status }
                return result
            } catch let failure as ProviderFailure {
                span.attributes["sluice.error_class"] = failure.errorClass.rawValue
                if let status = failure.httpStatus { span.attributes["http.response.status_code"] = status }
                span.setStatus(SpanStatus(code: .error, message: failure.errorClass.rawValue))
                throw failure
            }
        }
    }

    /// Runs admission in a `sluice.admission` span; `outcome` names what it decided.
    static func admission<T>(_ body: () async -> (T, outcome: String)) async -> T {
        guard enabled else { return await body().0 }
        return await withSpan("sluice.admission") { span in
            let (value, outcome) = await body()
            span.attributes["sluice.admission.outcome"] = outcome
            return value
        }
    }

    /// Starts the `sluice.result_write` span of an outcome handed to the group commit, as a
    /// child of the current (`sluice.job`) span; nil without a tracer. The completer ends it.
    static func startResultWrite(_ outcome: AttemptOutcome) -> (any Span)? {
        guard enabled, let context = ServiceContext.current else { return nil }
        let span = startSpan("sluice.result_write", context: context)
        span.attributes["sluice.outcome"] = outcome.kind.rawValue
        return span
    }

    /// Ends a `sluice.result_write` span once its group is written: `groupSize` outcomes went
    /// in one statement, of which `refused` were refused as stale (the lease had moved on).
    static func endResultWrite(_ span: (any Span)?, groupSize: Int, refused: Int) {
        guard let span else { return }
        span.attributes["sluice.write.group_size"] = groupSize
        if refused > 0 { span.attributes["sluice.write.refused_in_group"] = refused }
        span.end()
    }

    /// Runs one webhook delivery attempt in a `sluice.webhook_delivery` span (client) in the
    /// job's trace; `send` gets the `traceparent` to put on the request (the span's, or without
    /// a tracer the job's own).
    static func webhookDelivery(_ delivery: WebhookDelivery,
                                _ send: (String?) async -> WebhookOutcome) async -> WebhookOutcome {
        guard enabled else { return await send(delivery.traceparent) }
        var context = ServiceContext.topLevel
        if let traceparent = delivery.traceparent {
            InstrumentationSystem.instrument.extract(["traceparent": traceparent], into: &context, using: Headers())
        }
        return await withSpan("sluice.webhook_delivery", context: context, ofKind: .client) { span in
            span.attributes["sluice.job_id"] = delivery.jobID.uuidString.lowercased()
            span.attributes["sluice.tenant"] = delivery.tenant
            span.attributes["sluice.webhook.event"] = delivery.event
            span.attributes["sluice.webhook.attempt"] = delivery.attempt
            let outcome = await send(outgoingTraceparent(fallback: delivery.traceparent))
            span.attributes["sluice.webhook.outcome"] = outcome.kind.rawValue
            if let status = outcome.status { span.attributes["http.response.status_code"] = status }
            if outcome.kind != .delivered {
                span.setStatus(SpanStatus(code: .error, message: outcome.kind.rawValue))
            }
            return outcome
        }
    }
}
