import Foundation

/// The per-request behaviour switches of the mock provider.
///
/// A request carries them in the header `x-mock: k=v,k=v` or inline in its last user message
/// as `[[mock: k=v,k=v]]` (or both; the header wins on a key present in both). Unknown keys or
/// bad values are answered with 400, so a typo never silently turns into a passing test.
///
/// | key | meaning |
/// |---|---|
/// | `status=CODE` | fail with that HTTP status and the wire format's error body |
/// | `context=1` | with `status=400`: the body says the context is too long |
/// | `retry_after_ms=N` | add `retry-after-ms: N` and `retry-after: ceil(N/1000)` to an error |
/// | `should_retry=true\|false` | add `x-should-retry` to an error |
/// | `fail_times=N` | the failing directives apply only to the first N identical requests |
/// | `tokens=N` | output length (capped by `max_tokens`) |
/// | `ttft_ms=N` | delay before the first content token |
/// | `tps=N` | tokens per second after the first |
/// | `cached=N` | report N cached input tokens |
/// | `cache_write=N` | report N cache-creation tokens (Anthropic) |
/// | `tools=N` | answer with N parallel tool calls instead of text |
/// | `stall_after=N` | stream N content chunks, then send nothing (connection stays open) |
/// | `disconnect_after=N` | stream N content chunks, then close the TCP connection abruptly |
/// | `truncate=1` | end the HTTP response normally but without the terminal marker |
/// | `malformed_after=N` | after N content chunks send one invalid-JSON `data:` line, then continue |
/// | `error_after=N` | after N content chunks send an in-stream error event, then end |
public struct MockDirectives: Sendable, Equatable {
    /// `status=CODE`: fail with this HTTP status.
    public var status: Int?
    /// `context=1`: with status 400, say the context is too long.
    public var contextTooLong = false
    /// `retry_after_ms=N`: `retry-after-ms`/`retry-after` on the error.
    public var retryAfterMilliseconds: Int?
    /// `should_retry=`: `x-should-retry` on the error.
    public var shouldRetry: Bool?
    /// `fail_times=N`: failing directives apply to the first N identical requests only.
    public var failTimes: Int?
    /// `tokens=N`: output length (capped by `max_tokens`).
    public var tokens: Int?
    /// `ttft_ms=N`: delay before the first content token.
    public var ttftMilliseconds: Int?
    /// `tps=N`: streaming pace after the first token.
    public var tokensPerSecond: Double?
    /// `cached=N`: cached input tokens to report.
    public var cached: Int?
    /// `cache_write=N`: Anthropic cache-creation tokens to report.
    public var cacheWrite: Int?
    /// `tools=N`: answer with N parallel tool calls.
    public var tools: Int?
    /// `stall_after=N`: go silent after N content chunks.
    public var stallAfter: Int?
    /// `disconnect_after=N`: close the connection after N content chunks.
    public var disconnectAfter: Int?
    /// `truncate=1`: omit the terminal marker.
    public var truncate = false
    /// `malformed_after=N`: one invalid-JSON event after N content chunks.
    public var malformedAfter: Int?
    /// `error_after=N`: an in-stream error event after N content chunks, then end.
    public var errorAfter: Int?

    /// No directives.
    public init() {}

    /// Whether any directive makes the request fail or the stream misbehave (the ones `fail_times` limits).
    public var hasFailure: Bool {
        status != nil || stallAfter != nil || disconnectAfter != nil || truncate || malformedAfter != nil
            || errorAfter != nil
    }

    /// The same directives with every failing one removed (what a request past `fail_times` gets).
    public var withoutFailures: MockDirectives {
        var copy = self
        copy.status = nil
        copy.contextTooLong = false
        copy.stallAfter = nil
        copy.disconnectAfter = nil
        copy.truncate = false
        copy.malformedAfter = nil
        copy.errorAfter = nil
        return copy
    }

    /// Parses `k=v,k=v` (spaces around items are ignored) on top of `self`.
    /// - Throws: ``MockProviderError`` with code `.invalidDirective` for an unknown key or a bad value.
    public mutating func apply(_ text: String) throws {
        for item in text.split(separator: ",") {
            let trimmed = item.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let parts = trimmed.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else {
                throw MockProviderError(.invalidDirective, "mock directive '\(trimmed)' is not key=value")
            }
            let key = parts[0], value = parts[1]
            func int() throws -> Int {
                guard let v = Int(value), v >= 0 else {
                    throw MockProviderError(.invalidDirective, "mock directive '\(key)' needs a non-negative integer, got '\(value)'")
                }
                return v
            }
            func bool() throws -> Bool {
                switch value.lowercased() {
                case "1", "true", "yes": return true
                case "0", "false", "no": return false
                default: throw MockProviderError(.invalidDirective, "mock directive '\(key)' needs true/false, got '\(value)'")
                }
            }
            switch key {
            case "status":
                let code = try int()
                guard (400...599).contains(code) else {
                    throw MockProviderError(.invalidDirective, "mock directive 'status' must be 400...599, got \(code)")
                }
                status = code
            case "context": contextTooLong = try bool()
            case "retry_after_ms": retryAfterMilliseconds = try int()
            case "should_retry": shouldRetry = try bool()
            case "fail_times": failTimes = try int()
            case "tokens": tokens = try int()
            case "ttft_ms": ttftMilliseconds = try int()
            case "tps":
                guard let v = Double(value), v > 0 else {
                    throw MockProviderError(.invalidDirective, "mock directive 'tps' needs a positive number, got '\(value)'")
                }
                tokensPerSecond = v
            case "cached": cached = try int()
            case "cache_write": cacheWrite = try int()
            case "tools": tools = try int()
            case "stall_after": stallAfter = try int()
            case "disconnect_after": disconnectAfter = try int()
            case "truncate": truncate = try bool()
            case "malformed_after": malformedAfter = try int()
            case "error_after": errorAfter = try int()
            default:
                throw MockProviderError(.invalidDirective, "unknown mock directive '\(key)'")
            }
        }
    }

    /// The text inside the first inline directive `[[mock: …]]` of `text`, if any.
    public static func inlineText(in text: String) -> String? {
        guard let open = text.range(of: "[[mock:") else { return nil }
        let after = text[open.upperBound...]
        guard let close = after.range(of: "]]") else { return nil }
        return String(after[after.startIndex..<close.lowerBound])
    }

    /// Directives of a request: the inline ones of `prompt`, then the header's on top.
    public static func parse(header: String?, prompt: String) throws -> MockDirectives {
        var directives = MockDirectives()
        if let inline = inlineText(in: prompt) { try directives.apply(inline) }
        if let header { try directives.apply(header) }
        return directives
    }
}
