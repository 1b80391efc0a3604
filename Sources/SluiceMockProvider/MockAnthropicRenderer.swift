import SluiceJSON

/// The Anthropic Messages wire format.
struct MockAnthropicRenderer: MockWireRenderer {
    var streamContentType: String { "text/event-stream; charset=utf-8" }

    private func stopReason(_ finish: MockFinishReason) -> String {
        switch finish {
        case .stop: "\"end_turn\""
        case .length: "\"max_tokens\""
        case .toolCalls: "\"tool_use\""
        }
    }

    private func event(_ name: String, _ data: String) -> String {
        "event: \(name)\ndata: \(data)\n\n"
    }

    private func usage(_ c: MockCompletion, outputTokens: Int) -> String {
        "{\"input_tokens\":\(c.inputTokens),\"cache_creation_input_tokens\":\(c.cacheWriteTokens),\"cache_read_input_tokens\":\(c.cachedTokens),\"output_tokens\":\(outputTokens)}"
    }

    func body(for c: MockCompletion) -> String {
        let content: String
        if c.toolCalls.isEmpty {
            content = "[{\"type\":\"text\",\"text\":\(JSONString.quoted(c.text))}]"
        } else {
            content = "[" + c.toolCalls.map { call in
                "{\"type\":\"tool_use\",\"id\":\(JSONString.quoted(call.id)),\"name\":\(JSONString.quoted(call.name)),\"input\":\(call.arguments)}"
            }.joined(separator: ",") + "]"
        }
        return "{\"id\":\(JSONString.quoted(c.id)),\"type\":\"message\",\"role\":\"assistant\",\"model\":\(JSONString.quoted(c.model)),"
            + "\"content\":\(content),\"stop_reason\":\(stopReason(c.finish)),\"stop_sequence\":null,\"usage\":\(usage(c, outputTokens: c.outputTokens))}"
    }

    func streamEvents(for c: MockCompletion, includeUsage: Bool) -> [MockStreamEvent] {
        var events: [MockStreamEvent] = []
        let start = "{\"type\":\"message_start\",\"message\":{\"id\":\(JSONString.quoted(c.id)),\"type\":\"message\",\"role\":\"assistant\","
            + "\"model\":\(JSONString.quoted(c.model)),\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":\(usage(c, outputTokens: 1))}}"
        events.append(.init(kind: .preamble, text: event("message_start", start), tokens: 0))
        let ping = MockStreamEvent(kind: .preamble, text: event("ping", "{\"type\":\"ping\"}"), tokens: 0)
        if c.toolCalls.isEmpty {
            events.append(.init(kind: .preamble, text: event("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"), tokens: 0))
            events.append(ping)
            for piece in c.pieces {
                let data = "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\(JSONString.quoted(piece))}}"
                events.append(.init(kind: .body, text: event("content_block_delta", data), tokens: 1))
            }
            events.append(.init(kind: .body, text: event("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"), tokens: 0))
        } else {
            events.append(ping)
            // Anthropic streams content blocks one after another: each tool_use block opens,
            // streams its input as input_json_delta fragments, and closes.
            for call in c.toolCalls {
                let open = "{\"type\":\"content_block_start\",\"index\":\(call.index),\"content_block\":{\"type\":\"tool_use\","
                    + "\"id\":\(JSONString.quoted(call.id)),\"name\":\(JSONString.quoted(call.name)),\"input\":{}}}"
                events.append(.init(kind: .body, text: event("content_block_start", open), tokens: 0))
                for fragment in call.fragments {
                    let data = "{\"type\":\"content_block_delta\",\"index\":\(call.index),\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\(JSONString.quoted(fragment))}}"
                    events.append(.init(kind: .body, text: event("content_block_delta", data), tokens: 1))
                }
                events.append(.init(kind: .body, text: event("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":\(call.index)}"), tokens: 0))
            }
        }
        let delta = "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\(stopReason(c.finish)),\"stop_sequence\":null},\"usage\":{\"output_tokens\":\(c.outputTokens)}}"
        events.append(.init(kind: .terminal, text: event("message_delta", delta), tokens: 0))
        events.append(.init(kind: .terminal, text: event("message_stop", "{\"type\":\"message_stop\"}"), tokens: 0))
        return events
    }

    func streamErrorEvent(requestID: String) -> String {
        event("error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"},\"request_id\":\(JSONString.quoted(requestID))}")
    }

    func malformedEvent() -> String {
        event("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":")
    }

    func errorBody(status: Int, reason: MockErrorReason, requestID: String) -> String {
        let (type, message): (String, String)
        switch reason {
        case .contextTooLong(let inputTokens):
            (type, message) = ("invalid_request_error", "prompt is too long: \(200_000 + max(1, inputTokens)) tokens > 200000 maximum")
        case .rateLimited(let tokens):
            (type, message) = (
                "rate_limit_error",
                "This request would exceed the rate limit for your organization of \(tokens ? "input tokens" : "requests") per minute on the mock provider. Please try again later."
            )
        case .invalidAPIKey:
            (type, message) = ("authentication_error", "invalid x-api-key")
        case .invalidRequest(let text):
            (type, message) = ("invalid_request_error", text)
        case .injected:
            switch status {
            case 401: (type, message) = ("authentication_error", "invalid x-api-key")
            case 403: (type, message) = ("permission_error", "Your API key does not have permission to use the specified resource.")
            case 404: (type, message) = ("not_found_error", "model: not found")
            case 413: (type, message) = ("request_too_large", "Request exceeds the maximum allowed number of bytes.")
            case 429: (type, message) = ("rate_limit_error", "Number of requests has exceeded your rate limit. Please try again later.")
            case 504: (type, message) = ("timeout_error", "Request timed out.")
            case 529: (type, message) = ("overloaded_error", "Overloaded")
            case 500...: (type, message) = ("api_error", "Internal server error")
            default: (type, message) = ("invalid_request_error", "Mock provider injected status \(status).")
            }
        }
        return "{\"type\":\"error\",\"error\":{\"type\":\(JSONString.quoted(type)),\"message\":\(JSONString.quoted(message))},\"request_id\":\(JSONString.quoted(requestID))}"
    }
}
