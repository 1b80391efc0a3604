public import Foundation
import SluiceJSON

/// What to run: a provider and model, or a named route resolved by the router.
public enum JobTarget: Sendable, Hashable {
    case model(provider: String, model: String)
    case route(String)
}

/// A job to enqueue: a provider-shaped request plus where and how to run it.
///
/// Validation happens in PostgreSQL (`sluice.enqueue_specs`: `sluice.spec_ok` clears valid specs,
/// `sluice.check_spec` names what is wrong with the others), the single definition shared with
/// the SQL API, so the Swift library and services in any other language get the same errors
/// (``SluiceError`` with `field` and `rule`).
public struct JobSpec: Sendable, Hashable {
    /// The tenant the job belongs to (`^[a-z0-9][a-z0-9_-]{0,62}$`).
    public var tenant: String
    /// Priority lane. Default `.normal`.
    public var lane: Lane
    /// Provider + model, or a route.
    public var target: JobTarget
    /// The request body in the provider's shape: OpenAI Chat Completions (`messages`, …) or
    /// Anthropic Messages. Sluice sets `model` and `stream` itself.
    public var request: JSONDocument
    /// Cap on output tokens (also taken from `request.max_tokens` when nil). Required for Anthropic.
    public var maxOutputTokens: Int?
    /// Earliest start. Default: now.
    public var runAt: Date?
    /// Attempts before the job goes to dead letters. Default: the database setting (5).
    public var maxAttempts: Int?
    /// Per-attempt timeout of the provider call. Default: the database setting (10 minutes).
    public var timeout: Duration?
    /// Where the result is delivered (https; http only when the operator allows it).
    public var webhookURL: String?
    /// Free-form JSON object stored with the job.
    public var metadata: JSONDocument?
    /// Same tenant + same key → the same job, never a second one.
    public var idempotencyKey: String?
    /// W3C trace context of the submitter.
    public var traceparent: String?
    /// Stream the provider call (default true; measures time to first token).
    public var stream: Bool?

    public init(
        tenant: String, lane: Lane = .normal, provider: String, model: String, request: JSONDocument,
        maxOutputTokens: Int? = nil, runAt: Date? = nil, maxAttempts: Int? = nil, timeout: Duration? = nil,
        webhookURL: String? = nil, metadata: JSONDocument? = nil, idempotencyKey: String? = nil,
        traceparent: String? = nil, stream: Bool? = nil
    ) {
        self.init(tenant: tenant, lane: lane, target: .model(provider: provider, model: model), request: request,
                  maxOutputTokens: maxOutputTokens, runAt: runAt, maxAttempts: maxAttempts, timeout: timeout,
                  webhookURL: webhookURL, metadata: metadata, idempotencyKey: idempotencyKey,
                  traceparent: traceparent, stream: stream)
    }

    public init(
        tenant: String, lane: Lane = .normal, target: JobTarget, request: JSONDocument,
        maxOutputTokens: Int? = nil, runAt: Date? = nil, maxAttempts: Int? = nil, timeout: Duration? = nil,
        webhookURL: String? = nil, metadata: JSONDocument? = nil, idempotencyKey: String? = nil,
        traceparent: String? = nil, stream: Bool? = nil
    ) {
        self.tenant = tenant
        self.lane = lane
        self.target = target
        self.request = request
        self.maxOutputTokens = maxOutputTokens
        self.runAt = runAt
        self.maxAttempts = maxAttempts
        self.timeout = timeout
        self.webhookURL = webhookURL
        self.metadata = metadata
        self.idempotencyKey = idempotencyKey
        self.traceparent = traceparent
        self.stream = stream
    }

    /// Checks what only the client can check (that the JSON documents parse and are objects);
    /// everything else is checked by the database.
    func checkDocuments() throws(SluiceError) {
        guard let kind = request.topLevelKind else {
            throw .invalid("request", "json", "request is not valid JSON")
        }
        guard kind == "object" else {
            throw .invalid("request", "object", "request is required (a JSON object shaped for the provider)")
        }
        if let metadata {
            guard let kind = metadata.topLevelKind else { throw .invalid("metadata", "json", "metadata is not valid JSON") }
            guard kind == "object" else { throw .invalid("metadata", "object", "metadata must be a JSON object") }
        }
    }

    /// The spec as the JSON object `sluice.enqueue_specs` takes (the `sluice enqueue --file` line shape).
    func write(to json: inout JSONWriter) {
        json.beginObject()
        json.field("tenant", tenant)
        json.field("lane", lane.rawValue)
        switch target {
        case .model(let provider, let model):
            json.field("provider", provider)
            json.field("model", model)
        case .route(let name):
            json.field("route", name)
        }
        json.field("request", raw: request.bytes)
        json.field("max_output_tokens", maxOutputTokens)
        json.field("run_at", runAt.map { JobSpec.rfc3339.string(from: $0) })
        json.field("max_attempts", maxAttempts)
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            json.field("timeout_ms", Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
        }
        json.field("webhook_url", webhookURL)
        json.field("metadata", raw: metadata?.bytes)
        json.field("idempotency_key", idempotencyKey)
        json.field("traceparent", traceparent)
        json.field("stream", stream)
        json.endObject()
    }

    nonisolated(unsafe) static let rfc3339: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}
