import Foundation

/// The parts of an OpenAI or Anthropic request body the mock needs, read leniently.
struct MockCompletionRequest: Sendable {
    var model: String
    /// All text content (messages and system), for the usage rule.
    var texts: [String]
    /// Text of the last user message (with any inline directive still in it).
    var lastUserText: String
    /// `max_tokens` / `max_completion_tokens`, if given.
    var maxTokens: Int?
    var stream: Bool
    /// OpenAI `stream_options.include_usage`.
    var includeUsage: Bool

    var inputTokens: Int { MockProviderOutput.inputTokens(texts: texts) }

    static func parse(_ data: Data, format: MockWireFormat) throws -> MockCompletionRequest {
        guard let object = try? JSONSerialization.jsonObject(with: data), let body = object as? [String: Any] else {
            throw MockProviderError(.invalidRequest, "request body is not a JSON object")
        }
        guard let model = body["model"] as? String, !model.isEmpty else {
            throw MockProviderError(.invalidRequest, "model: field required")
        }
        guard let messages = body["messages"] as? [Any] else {
            throw MockProviderError(.invalidRequest, "messages: field required")
        }
        try checkWireFormat(body, messages: messages, format: format)
        var texts: [String] = []
        if format == .anthropic, let system = body["system"] {
            texts += textParts(of: system)
        }
        var lastUser = ""
        for case let message as [String: Any] in messages {
            let parts = message["content"].map(textParts(of:)) ?? []
            texts += parts
            if (message["role"] as? String) == "user" {
                lastUser = parts.joined(separator: "\n")
            }
        }
        let maxTokens = intValue(body["max_tokens"]) ?? intValue(body["max_completion_tokens"])
        if format == .anthropic && maxTokens == nil {
            throw MockProviderError(.invalidRequest, "max_tokens: Field required")
        }
        if let maxTokens, maxTokens < 1 {
            throw MockProviderError(.invalidRequest, "max_tokens: must be at least 1")
        }
        let stream = (body["stream"] as? Bool) ?? false
        let includeUsage = ((body["stream_options"] as? [String: Any])?["include_usage"] as? Bool) ?? false
        return MockCompletionRequest(
            model: model, texts: texts, lastUserText: lastUser, maxTokens: maxTokens, stream: stream,
            includeUsage: includeUsage
        )
    }

    /// Fields and roles of the other wire format are refused, as the real APIs refuse them
    /// (Anthropic: "Extra inputs are not permitted", roles user/assistant only, temperature
    /// 0–1; OpenAI: "Unrecognized request argument"), so a request sent in the wrong format
    /// fails here as it would there.
    static func checkWireFormat(_ body: [String: Any], messages: [Any], format: MockWireFormat) throws {
        let foreign: [String] = format == .anthropic
            ? ["stop", "max_completion_tokens", "n", "response_format", "seed", "stream_options", "frequency_penalty", "presence_penalty"]
            : ["system", "stop_sequences", "top_k"]
        for key in foreign where body[key] != nil {
            throw MockProviderError(.invalidRequest, format == .anthropic
                                    ? "\(key): Extra inputs are not permitted" : "Unrecognized request argument supplied: \(key)")
        }
        guard format == .anthropic else { return }
        for case let (index, message as [String: Any]) in messages.enumerated() {
            let role = message["role"] as? String
            if role != "user" && role != "assistant" {
                throw MockProviderError(.invalidRequest, "messages.\(index).role: Input should be 'user' or 'assistant'")
            }
        }
        if let temperature = body["temperature"] as? Double, temperature > 1 {
            throw MockProviderError(.invalidRequest, "temperature: Input should be less than or equal to 1")
        }
    }

    private static func intValue(_ value: Any?) -> Int? {
        if let n = value as? Int { return n }
        if let d = value as? Double, d.rounded() == d { return Int(d) }
        return nil
    }

    /// A content value's text: the string itself, or the `text` of every `type: "text"` part.
    private static func textParts(of content: Any) -> [String] {
        if let string = content as? String { return [string] }
        guard let parts = content as? [Any] else { return [] }
        var texts: [String] = []
        for case let part as [String: Any] in parts where (part["type"] as? String) == "text" {
            if let text = part["text"] as? String { texts.append(text) }
        }
        return texts
    }
}
