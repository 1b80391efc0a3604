public import Foundation
import SluiceJSON
import SluiceSupport

/// How one attempt ended, as ``JobStore/finishAttempts(worker:outcomes:)`` records it
/// (`sluice.finish_attempts`).
public struct AttemptOutcome: Sendable {
    /// What happens to the job.
    public enum Kind: String, Sendable {
        /// The call succeeded: the result is stored and the job is finished.
        case succeeded
        /// The call failed and will be tried again at `retryAt`.
        case retry
        /// The job is finished without a result and gets a dead letter (`reason`).
        case dead
        /// A cancel was requested and the attempt stopped.
        case cancelled
        /// The job did not start (a rate limit, cooldown, paused model or budget hold): it goes
        /// back to the queue at `retryAt` without consuming an attempt, with `reason` shown on
        /// it until it starts (``JobStore/deferJobs(worker:_:)``, not `finish_attempts`).
        case deferred
    }

    public var jobID: UUID
    /// The attempt this outcome is for (the lease guard refuses a stale one).
    public var attempt: Int
    public var kind: Kind
    public var startedAt: Date
    public var duration: Duration
    public var httpStatus: Int?
    public var errorClass: ErrorClass?
    public var errorMessage: String?
    /// When a retried job may run again, by this worker's clock (for logs). What is stored is
    /// ``retryDelay`` counted from the database's clock, when set.
    public var retryAt: Date?
    /// How long after the outcome is written a retried job may run again. The database adds it
    /// to its own clock (`now()`), so a worker whose clock is off schedules retries correctly.
    public var retryDelay: Duration?
    /// Why the job is dead (for ``Kind/dead``).
    public var reason: String?
    public var usage: Usage?
    public var costUSD: Double?
    public var result: ProviderResult?
    /// The provider's Retry-After on a failure (not stored; for the limiter's cooldowns).
    public var retryAfter: Duration?
    /// The provider's rate-limit headers (not stored; for the limiter).
    public var rateLimits: RateLimitSnapshot?
    /// The provider and model this attempt called (`attempts.provider`, `attempts.model`).
    public var target: RouteTarget?
    /// Why a route job moves on to another target after this attempt (`attempts.fallback`).
    public var fallback: String?
    /// Targets of the job's route admission passed over before this attempt's call.
    public var skipped: [RouteSkip] = []
    /// A route job's next target index to keep on the job (nil leaves it as it is).
    public var routeStep: Int?
    /// A route job's context-window floor to keep on the job (nil leaves it as it is).
    public var routeContextFloor: Int?
    /// A deferral that demotes the job (its tenant reached a soft budget): its new lane.
    public var demoteLane: Lane?
    /// A deferral that demotes the job: the route it runs through from now on.
    public var demoteRoute: String?

    public init(jobID: UUID, attempt: Int, kind: Kind, startedAt: Date, duration: Duration) {
        self.jobID = jobID
        self.attempt = attempt
        self.kind = kind
        self.startedAt = startedAt
        self.duration = duration
    }

    /// Appends this outcome as one element of `sluice.finish_attempts`' JSON array.
    func write(to json: inout JSONWriter) {
        json.beginObject()
        json.field("id", jobID.lowercasedText)
        json.field("attempt", attempt)
        json.field("outcome", kind.rawValue)
        json.field("started_at", raw: JSONDates.quoted(startedAt))
        json.field("duration_ms", duration.milliseconds)
        json.field("http_status", httpStatus)
        json.field("error_class", errorClass?.rawValue)
        json.field("error_message", errorMessage.map { String($0.prefix(2000)) })
        json.field("retry_at", raw: retryAt.map(JSONDates.quoted))
        json.field("retry_delay_ms", retryDelay?.milliseconds)
        json.field("reason", reason)
        if let usage {
            json.key("usage")
            json.beginObject()
            json.field("input", usage.inputTokens)
            json.field("output", usage.outputTokens)
            json.field("cache_read", usage.cacheReadTokens)
            json.field("cache_write", usage.cacheWriteTokens)
            json.endObject()
        }
        json.field("cost_usd", costUSD)
        if let target {
            json.field("target_provider", target.provider)
            json.field("target_model", target.model)
        }
        json.field("fallback", fallback)
        if !skipped.isEmpty {
            json.key("skipped")
            json.beginArray()
            for skip in skipped {
                json.beginObject()
                json.field("target", skip.target.description)
                json.field("reason", String(skip.reason.prefix(500)))
                json.endObject()
            }
            json.endArray()
        }
        json.field("route_step", routeStep)
        json.field("route_context_floor", routeContextFloor)
        if let result {
            json.key("result")
            json.beginObject()
            json.field("output_text", result.text)
            json.key("tool_calls")
            json.beginArray()
            for call in result.toolCalls {
                json.beginObject()
                json.field("id", call.id)
                json.field("name", call.name)
                json.field("arguments", call.arguments)
                json.endObject()
            }
            json.endArray()
            json.field("finish_reason", result.finishReason)
            if !result.rawResponse.isEmpty, JSONDocument(bytes: result.rawResponse).isWellFormed {
                json.field("raw_response", raw: result.rawResponse)
            }
            json.field("provider", result.provider)
            json.field("model", result.model)
            json.field("latency_ms", result.latency.milliseconds)
            json.field("ttft_ms", result.timeToFirstToken?.milliseconds)
            json.endObject()
        }
        json.endObject()
    }
}

extension Duration {
    /// The duration in (fractional) milliseconds.
    package var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}

/// RFC 3339 timestamps in UTC with microseconds (`2026-11-23T15:04:05.123456Z`), the form
/// PostgreSQL's timestamptz input reads exactly. Written by hand: ISO8601DateFormatter (ICU,
/// behind a lock) cost about 1 % of the worker's CPU at 15k jobs/s.
enum JSONDates {
    /// The timestamp as a JSON string value (quoted), for ``JSONWriter/raw(_:)``.
    static func quoted(_ date: Date) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "\"")]
        bytes.reserveCapacity(29)
        append(date, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
        return bytes
    }

    /// Appends the digits and separators, without building intermediate strings (this runs
    /// once or twice for every outcome written).
    static func append(_ date: Date, to out: inout [UInt8]) {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        var seconds = time_t((micros / 1_000_000).rounded(.down))
        let fraction = Int(micros - Double(seconds) * 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // Zero-padded to `width`; a wider value (a year after 9999) keeps all its digits.
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            var count = 1
            while count < width || value / divisor >= 10 { divisor *= 10; count += 1 }
            var rest = max(value, 0)
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2); out.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2); out.append(UInt8(ascii: "."))
        digits(fraction, 6); out.append(UInt8(ascii: "Z"))
    }
}

extension JSONDocument {
    /// Whether the bytes are one well-formed JSON document (``JSONSyntax``).
    var isWellFormed: Bool {
        JSONSyntax.isValid(bytes)
    }
}
