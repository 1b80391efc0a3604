import SluiceJSON

/// The OpenAI Chat Completions wire format.
struct MockOpenAIRenderer: MockWireRenderer {
    var streamContentType: String { "text/event-stream; charset=utf-8" }

    private static let fingerprint = "\"fp_mock\""

    private func finishReason(_ finish: MockFinishReason) -> String {
        switch finish {
        case .stop: "\"stop\""
        case .length: "\"length\""
        case .toolCalls: "\"tool_calls\""
        }
    }

    func usage(_ c: MockCompletion) -> String {
        let output = c.outputTokens
        return "{\"prompt_tokens\":\(c.inputTokens),\"completion_tokens\":\(output),\"total_tokens\":\(c.inputTokens + output),"
            + "\"prompt_tokens_details\":{\"cached_tokens\":\(c.cachedTokens),\"audio_tokens\":0},"
            + "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}"
    }

    func body(for c: MockCompletion) -> String {
        var message = "{\"role\":\"assistant\","
        if c.toolCalls.isEmpty {
            message += "\"content\":\(JSONString.quoted(c.text)),\"refusal\":null,\"annotations\":[]}"
        } else {
            let calls = c.toolCalls.map { call in
                "{\"id\":\(JSONString.quoted(call.id)),\"type\":\"function\",\"function\":{\"name\":\(JSONString.quoted(call.name)),\"arguments\":\(JSONString.quoted(call.arguments))}}"
            }
            message += "\"content\":null,\"refusal\":null,\"tool_calls\":[\(calls.joined(separator: ","))],\"annotations\":[]}"
        }
        return "{\"id\":\(JSONString.quoted(c.id)),\"object\":\"chat.completion\",\"created\":\(c.created),\"model\":\(JSONString.quoted(c.model)),"
            + "\"choices\":[{\"index\":0,\"message\":\(message),\"logprobs\":null,\"finish_reason\":\(finishReason(c.finish))}],"
            + "\"usage\":\(usage(c)),\"service_tier\":\"default\",\"system_fingerprint\":\(Self.fingerprint)}"
    }

    func streamEvents(for c: MockCompletion, includeUsage: Bool) -> [MockStreamEvent] {
        let head = "data: {\"id\":\(JSONString.quoted(c.id)),\"object\":\"chat.completion.chunk\",\"created\":\(c.created),"
            + "\"model\":\(JSONString.quoted(c.model)),\"service_tier\":\"default\",\"system_fingerprint\":\(Self.fingerprint),\"choices\":"
        let tail = includeUsage ? ",\"usage\":null}\n\n" : "}\n\n"
        func chunk(delta: String, finish: String = "null") -> String {
            head + "[{\"index\":0,\"delta\":\(delta),\"logprobs\":null,\"finish_reason\":\(finish)}]" + tail
        }
        var events: [MockStreamEvent] = []
        if c.toolCalls.isEmpty {
            events.append(.init(kind: .preamble, text: chunk(delta: "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}"), tokens: 0))
            for piece in c.pieces {
                events.append(.init(kind: .body, text: chunk(delta: "{\"content\":\(JSONString.quoted(piece))}"), tokens: 1))
            }
        } else {
            events.append(.init(kind: .preamble, text: chunk(delta: "{\"role\":\"assistant\",\"content\":null,\"refusal\":null}"), tokens: 0))
            // Each call opens with its id and name, then the argument fragments of all calls
            // interleave by index, as parallel calls do.
            for call in c.toolCalls {
                let delta = "{\"tool_calls\":[{\"index\":\(call.index),\"id\":\(JSONString.quoted(call.id)),\"type\":\"function\","
                    + "\"function\":{\"name\":\(JSONString.quoted(call.name)),\"arguments\":\"\"}}]}"
                events.append(.init(kind: .body, text: chunk(delta: delta), tokens: 0))
            }
            let rounds = c.toolCalls.map(\.fragments.count).max() ?? 0
            for round in 0..<rounds {
                for call in c.toolCalls where round < call.fragments.count {
                    let delta = "{\"tool_calls\":[{\"index\":\(call.index),\"function\":{\"arguments\":\(JSONString.quoted(call.fragments[round]))}}]}"
                    events.append(.init(kind: .body, text: chunk(delta: delta), tokens: 1))
                }
            }
        }
        events.append(.init(kind: .body, text: chunk(delta: "{}", finish: finishReason(c.finish)), tokens: 0))
        if includeUsage {
            events.append(.init(kind: .terminal, text: head + "[],\"usage\":\(usage(c))}\n\n", tokens: 0))
        }
        events.append(.init(kind: .terminal, text: "data: [DONE]\n\n", tokens: 0))
        return events
    }

    func streamErrorEvent(requestID: String) -> String {
        "data: {\"error\":{\"message\":\"The server had an error while processing your request. Sorry about that! (request id \(requestID))\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"
    }

    func malformedEvent() -> String {
        "data: {\"id\":\"chatcmpl-malformed\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"delta\":{\"content\":\n\n"
    }

    func errorBody(status: Int, reason: MockErrorReason, requestID: String) -> String {
        let (type, code, param, message): (String, String?, String?, String)
        switch reason {
        case .contextTooLong(let inputTokens):
            (type, code, param, message) = (
                "invalid_request_error", "context_length_exceeded", "messages",
                "This model's maximum context length is 128000 tokens. However, your messages resulted in \(128_000 + max(1, inputTokens)) tokens. Please reduce the length of the messages."
            )
        case .rateLimited(let tokens):
            (type, code, param, message) = (
                tokens ? "tokens" : "requests", "rate_limit_exceeded", nil,
                "Rate limit reached for \(tokens ? "tokens per min (TPM)" : "requests per min (RPM)") on the mock provider. Please try again later."
            )
        case .invalidAPIKey:
            (type, code, param, message) = (
                "invalid_request_error", "invalid_api_key", nil, "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
            )
        case .invalidRequest(let text):
            (type, code, param, message) = ("invalid_request_error", nil, nil, text)
        case .injected:
            switch status {
            case 401:
                (type, code, param, message) = ("invalid_request_error", "invalid_api_key", nil, "Incorrect API key provided.")
            case 403:
                (type, code, param, message) = ("invalid_request_error", "unsupported_country_region_territory", nil, "Country, region, or territory not supported")
            case 404:
                (type, code, param, message) = ("invalid_request_error", "model_not_found", "model", "The model does not exist or you do not have access to it.")
            case 429:
                (type, code, param, message) = ("requests", "rate_limit_exceeded", nil, "Rate limit reached for requests. Please try again later.")
            case 503, 529:
                (type, code, param, message) = ("server_error", nil, nil, "The engine is currently overloaded, please try again later.")
            case 500...:
                (type, code, param, message) = ("server_error", nil, nil, "The server had an error while processing your request. Sorry about that!")
            default:
                (type, code, param, message) = ("invalid_request_error", nil, nil, "Mock provider injected status \(status).")
            }
        }
        return "{\"error\":{\"message\":\(JSONString.quoted(message)),\"type\":\(JSONString.quoted(type)),\"param\":\(JSONString.quotedOrNull(param)),\"code\":\(JSONString.quotedOrNull(code))}}"
    }
}
