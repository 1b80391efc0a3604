import Foundation
public import Sluice
import SluiceJSON
import SluiceSupport

/// The built-in `echo` provider: no network, answers with the text of the last user message.
///
/// For development, tests and the worker's own benchmarks. Request bodies may be OpenAI- or
/// Anthropic-shaped (string content or an array of `{"type":"text","text":…}` parts).
/// Usage: input = ⌈characters of all message text (+ system) / 4⌉, output = ⌈output
/// characters / 4⌉ (characters = `String.count`). Job metadata controls its behaviour:
///
/// - `echo_delay_ms`: wait this long before answering (cancellable; default 0).
/// - `echo_fail`: an ``ErrorClass`` raw value (`rate_limited`, `server_error`, …) to fail with.
/// - `echo_retry_after_ms`: the failure's `retryAfter`.
/// - `echo_fail_attempts`: fail only while `call.attempt ≤ N`, then succeed (retry tests).
public struct EchoProvider: LLMProvider {
    public let name: String
    private let priceTable: PriceTable?

    /// - Parameters:
    ///   - name: the provider name jobs use. Default `echo`.
    ///   - priceTable: prices `echo/<model>` (zero in the bundled table); nil = no cost.
    public init(name: String = "echo", priceTable: PriceTable?) {
        self.name = name
        self.priceTable = priceTable
    }

    public func call(_ call: ProviderCall) async throws -> ProviderResult {
        let clock = ContinuousClock()
        let start = clock.now
        let metadata = (try? JSONValue.parse(call.metadata)) ?? .object([:])

        if let delay = metadata["echo_delay_ms"]?.intValue, delay > 0 {
            do {
                try await Task.sleep(for: .milliseconds(delay))
            } catch {
                throw ProviderFailure(.cancelled, "echo call cancelled during its delay")
            }
        }
        if Task.isCancelled { throw ProviderFailure(.cancelled, "echo call cancelled") }

        if let failName = metadata["echo_fail"]?.stringValue {
            guard let errorClass = ErrorClass(rawValue: failName) else {
                throw ProviderFailure(.invalidRequest, "metadata.echo_fail: unknown error class \"\(failName.prefix(64))\"")
            }
            let failAttempts = metadata["echo_fail_attempts"]?.intValue
            if failAttempts.map({ call.attempt <= $0 }) ?? true {
                let retryAfter = metadata["echo_retry_after_ms"]?.intValue.map { Duration.milliseconds($0) }
                throw ProviderFailure(errorClass, "echo failure requested by metadata (attempt \(call.attempt))", retryAfter: retryAfter)
            }
        }

        let request: JSONValue
        do {
            request = try JSONValue.parse(call.request)
        } catch {
            throw ProviderFailure(.invalidRequest, "request body is not valid JSON")
        }
        guard case .object = request else {
            throw ProviderFailure(.invalidRequest, "request body must be a JSON object")
        }
        let text = MessageText.lastUserText(of: request) ?? ""
        let inputCharacters = MessageText.allText(of: request).reduce(0) { $0 + $1.count }
        let usage = Usage(inputTokens: Self.tokens(characters: inputCharacters), outputTokens: Self.tokens(characters: text.count))
        // Written straight to bytes (not a JSONValue tree serialised with sorted keys: that
        // was ~1/6 of a worker's CPU per job in the echo end-to-end benchmark).
        var raw = JSONWriter(capacity: 256 + text.utf8.count)
        raw.beginObject()
        raw.field("id", "echo-" + call.jobID.lowercasedText)
        raw.field("object", "chat.completion")
        raw.field("model", call.model)
        raw.key("choices")
        raw.beginArray()
        raw.beginObject()
        raw.field("index", 0)
        raw.key("message")
        raw.beginObject()
        raw.field("role", "assistant")
        raw.field("content", text)
        raw.endObject()
        raw.field("finish_reason", "stop")
        raw.endObject()
        raw.endArray()
        raw.key("usage")
        raw.beginObject()
        raw.field("prompt_tokens", usage.inputTokens)
        raw.field("completion_tokens", usage.outputTokens)
        raw.field("total_tokens", usage.totalTokens)
        raw.endObject()
        raw.endObject()
        let latency = clock.now - start
        return ProviderResult(
            text: text, finishReason: "stop", rawResponse: raw.bytes, usage: usage,
            costUSD: priceTable?.cost(providers: [name, "echo"], model: call.model, usage: usage),
            model: call.model, provider: name, latency: latency,
            timeToFirstToken: call.stream ? latency : nil, httpStatus: nil
        )
    }

    /// ⌈characters / 4⌉.
    static func tokens(characters: Int) -> Int { (characters + 3) / 4 }
}
