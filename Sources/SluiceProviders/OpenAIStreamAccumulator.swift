import Foundation
import Sluice
import SluiceJSON

/// Accumulates an OpenAI Chat Completions event stream: content deltas, tool-call fragments
/// by index (parallel calls interleave), the finish reason, and usage from the final
/// `choices: []` chunk. The stream is complete only after `data: [DONE]`; anything else — a
/// cut, a missing `[DONE]`, a malformed chunk — is a `connection` failure carrying whatever
/// usage was reported before it. Only choice 0 is kept.
struct OpenAIStreamAccumulator: StreamAccumulator {
    struct PartialToolCall: Sendable {
        var id: String?
        var type: String?
        var name: String = ""
        var arguments: String = ""
    }

    private var parser: SSEParser
    private(set) var text = ""
    private(set) var refusal = ""
    private(set) var toolCalls: [Int: PartialToolCall] = [:]
    private(set) var finishReason: String?
    private(set) var usage: OpenAIWire.Usage?
    private(set) var model: String?
    private var id: String?
    private var created: Int?
    private var systemFingerprint: String?
    private(set) var isComplete = false
    private var sawFirstToken = false
    private var sawRole = false
    private(set) var chunks = 0

    init(configuration: SSEParser.Configuration = .init()) {
        parser = SSEParser(configuration: configuration)
    }

    var reportedUsage: Usage? { usage?.normalized }

    mutating func feed(_ chunk: [UInt8]) throws(ProviderFailure) -> Bool {
        if isComplete { return false }
        let before = sawFirstToken
        let events: [SSEEvent]
        do {
            events = try parser.feed(chunk)
        } catch {
            throw ProviderFailure(.connection, "malformed event stream: \((error as? SSEParserError)?.message ?? "\(error)")", usage: reportedUsage)
        }
        for event in events {
            try consume(event)
        }
        return !before && sawFirstToken
    }

    private mutating func consume(_ event: SSEEvent) throws(ProviderFailure) {
        if isComplete { return }
        let data = event.dataBytes
        if data.count == 6 && data == Self.done {
            isComplete = true
            return
        }
        let decoded: OpenAIWire.Chunk
        do {
            decoded = try JSONReader.read(OpenAIWire.Chunk.self, from: data)
        } catch {
            throw ProviderFailure(.connection, "malformed stream chunk (invalid JSON) after \(chunks) chunks", usage: reportedUsage)
        }
        chunks += 1
        if let error = decoded.error {
            let body = ErrorMapping.ErrorBody(message: error.message, type: error.type, code: error.codeText)
            throw ProviderFailure(
                ErrorMapping.errorClass(openAIStreamError: body),
                "stream error: \(error.message ?? error.type ?? "unknown")", usage: reportedUsage
            )
        }
        if id == nil { id = decoded.id }
        if let chunkModel = decoded.model, !chunkModel.isEmpty { model = chunkModel }
        if created == nil { created = decoded.created }
        if let fingerprint = decoded.systemFingerprint { systemFingerprint = fingerprint }
        if let chunkUsage = decoded.usage { usage = chunkUsage }
        for choice in decoded.choices ?? [] where (choice.index ?? 0) == 0 {
            if let reason = choice.finishReason { finishReason = reason }
            guard let delta = choice.delta else { continue }
            if delta.role != nil { sawRole = true }
            if let content = delta.content, !content.isEmpty {
                text += content
                sawFirstToken = true
            }
            if let piece = delta.refusal, !piece.isEmpty {
                refusal += piece
                sawFirstToken = true
            }
            for fragment in delta.toolCalls ?? [] {
                let index = fragment.index ?? 0
                var call = toolCalls[index] ?? PartialToolCall()
                if let id = fragment.id, !id.isEmpty { call.id = id }
                if let type = fragment.type { call.type = type }
                if let name = fragment.function?.name { call.name += name }
                if let arguments = fragment.function?.arguments { call.arguments += arguments }
                toolCalls[index] = call
                sawFirstToken = true
            }
        }
    }

    private static let done: [UInt8] = Array("[DONE]".utf8)

    func finish() throws(ProviderFailure) -> Completion {
        guard isComplete else {
            throw ProviderFailure(
                .connection, "stream ended without data: [DONE] after \(chunks) chunks (truncated response)",
                usage: reportedUsage
            )
        }
        guard let usage else {
            // include_usage was requested; a stream without its usage chunk cannot be billed.
            throw ProviderFailure(.connection, "stream ended without its usage chunk", usage: nil)
        }
        let calls = try Self.completeToolCalls(toolCalls, finishReason: finishReason)
        if finishReason == "content_filter" && text.isEmpty && calls.isEmpty {
            throw ProviderFailure(.contentFilter, "the provider's content filter stopped the response", usage: usage.normalized)
        }
        var message: [String: JSONValue] = [
            "role": .string("assistant"),
            "content": text.isEmpty && !calls.isEmpty ? .null : .string(text),
        ]
        if !refusal.isEmpty { message["refusal"] = .string(refusal) }
        if !calls.isEmpty {
            message["tool_calls"] = .array(calls.map { call in
                .object([
                    "id": .string(call.id), "type": .string("function"),
                    "function": .object(["name": .string(call.name), "arguments": .string(call.arguments)]),
                ])
            })
        }
        var raw: [String: JSONValue] = [
            "object": .string("chat.completion"),
            "choices": .array([.object([
                "index": .number(0), "message": .object(message),
                "finish_reason": finishReason.map(JSONValue.string) ?? .null,
            ])]),
            "usage": usage.json,
        ]
        if let id { raw["id"] = .string(id) }
        if let model { raw["model"] = .string(model) }
        if let created { raw["created"] = .number(Double(created)) }
        if let systemFingerprint { raw["system_fingerprint"] = .string(systemFingerprint) }
        return Completion(
            text: text, toolCalls: calls, finishReason: finishReason, rawResponse: JSONValue.object(raw).serialized(),
            usage: usage.normalized, model: model
        )
    }

    /// Orders tool calls by index and checks each one is whole: an id, a name, and arguments
    /// that parse as JSON (unless the output was cut by the token limit, which the finish
    /// reason `length` already tells).
    static func completeToolCalls(_ partial: [Int: PartialToolCall], finishReason: String?) throws(ProviderFailure) -> [ToolCall] {
        var calls: [ToolCall] = []
        for (index, call) in partial.sorted(by: { $0.key < $1.key }) {
            guard !call.name.isEmpty else {
                throw ProviderFailure(.serverError, "tool call \(index) has no function name")
            }
            let arguments = call.arguments.isEmpty ? "{}" : call.arguments
            if finishReason != "length" {
                guard (try? JSONSerialization.jsonObject(with: Data(arguments.utf8), options: [.fragmentsAllowed])) != nil else {
                    throw ProviderFailure(.serverError, "tool call \(index) (\(call.name.prefix(64))) has arguments that are not valid JSON")
                }
            }
            calls.append(ToolCall(id: call.id ?? "call_\(index)", name: call.name, arguments: arguments))
        }
        return calls
    }

    /// Parses a non-streaming `chat.completion` body.
    static func parseResponse(_ body: [UInt8]) throws(ProviderFailure) -> Completion {
        let response: OpenAIWire.Response
        do {
            response = try JSONReader.read(OpenAIWire.Response.self, from: body)
        } catch {
            throw ProviderFailure(.serverError, "response is not a valid chat.completion object")
        }
        guard let usage = response.usage else {
            throw ProviderFailure(.serverError, "response has no usage")
        }
        guard let choice = response.choices?.first(where: { ($0.index ?? 0) == 0 }) else {
            throw ProviderFailure(.serverError, "response has no choices", usage: usage.normalized)
        }
        var partial: [Int: PartialToolCall] = [:]
        for (index, call) in (choice.message?.toolCalls ?? []).enumerated() {
            partial[index] = PartialToolCall(id: call.id, type: call.type, name: call.function?.name ?? "", arguments: call.function?.arguments ?? "")
        }
        let calls: [ToolCall]
        do {
            calls = try completeToolCalls(partial, finishReason: choice.finishReason)
        } catch {
            throw ProviderFailure(
                error.errorClass, error.message, httpStatus: error.httpStatus, retryAfter: error.retryAfter,
                shouldRetry: error.shouldRetry, usage: usage.normalized, costUSD: error.costUSD, rateLimits: error.rateLimits
            )
        }
        let text = choice.message?.content ?? ""
        if choice.finishReason == "content_filter" && text.isEmpty && calls.isEmpty {
            throw ProviderFailure(.contentFilter, "the provider's content filter stopped the response", usage: usage.normalized)
        }
        return Completion(
            text: text, toolCalls: calls, finishReason: choice.finishReason, rawResponse: body,
            usage: usage.normalized, model: response.model
        )
    }
}
