import Foundation
import Sluice

/// How one attempt ended, as `sluice.finish_attempts` records it.
struct AttemptOutcome: Sendable {
    enum Kind: String, Sendable {
        case succeeded, retry, dead, cancelled
    }

    var jobID: UUID
    var attempt: Int
    var kind: Kind
    var startedAt: Date
    var duration: Duration
    var httpStatus: Int?
    var errorClass: ErrorClass?
    var errorMessage: String?
    var retryAt: Date?
    var reason: String?
    var usage: Usage?
    var costUSD: Double?
    var result: ProviderResult?

    func write(to json: inout JSONWriter) {
        json.beginObject()
        json.field("id", jobID.uuidString)
        json.field("attempt", attempt)
        json.field("outcome", kind.rawValue)
        json.field("started_at", JSONDates.format(startedAt))
        json.field("duration_ms", duration.milliseconds)
        json.field("http_status", httpStatus)
        json.field("error_class", errorClass?.rawValue)
        json.field("error_message", errorMessage.map { String($0.prefix(2000)) })
        json.field("retry_at", retryAt.map(JSONDates.format))
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
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}

enum JSONDates {
    nonisolated(unsafe) private static let formatter: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
    private static let lock = NSLock()

    static func format(_ date: Date) -> String {
        lock.lock()
        defer { lock.unlock() }
        return formatter.string(from: date)
    }
}

extension JSONDocument {
    /// Whether the bytes are one well-formed JSON document (``JSONSyntax``).
    var isWellFormed: Bool {
        JSONSyntax.isValid(bytes)
    }
}
