import Sluice
import SluiceJSON

/// Translates a route job's request between the OpenAI Chat Completions and the Anthropic
/// Messages formats, so one route may mix providers of both (docs/ARCHITECTURE.md, "Routes").
///
/// Translated: messages with text content (strings or `text` parts), the system prompt (system
/// or developer messages ↔ `system`), `max_tokens` / `max_completion_tokens`, `temperature`
/// (capped at 1 for Anthropic), `top_p`, `stop` ↔ `stop_sequences`, function tools
/// (`function.parameters` ↔ `input_schema`) and `tool_choice`. Not translated (the call fails
/// as `invalid_request` naming what): tool calls and tool results in the messages, images,
/// audio, documents and any other field. Enqueue refuses such requests for routes that mix
/// both formats (`sluice.route_request_problem`), so this only happens when a route was
/// changed to mix them after the job was queued.
enum RequestTranslation {
    /// A wire format.
    enum Format: String {
        case openai, anthropic

        var title: String { self == .openai ? "OpenAI Chat Completions" : "Anthropic Messages" }
    }

    /// The format a request is written in, from what only one of them has; nil when it has
    /// nothing specific to either (plain user/assistant messages are valid in both).
    static func format(of body: [String: JSONValue]) -> Format? {
        var anthropic = body["system"] != nil || body["stop_sequences"] != nil || body["top_k"] != nil
        var openai = body["max_completion_tokens"] != nil || body["stop"] != nil
        for tool in body["tools"]?.arrayValue ?? [] {
            if tool["input_schema"] != nil { anthropic = true }
            if tool["function"] != nil { openai = true }
        }
        switch body["tool_choice"] {
        case .string?: openai = true
        case .object(let choice)?: if choice["type"]?.stringValue == "function" { openai = true } else { anthropic = true }
        default: break
        }
        for message in body["messages"]?.arrayValue ?? [] {
            switch message["role"]?.stringValue {
            case "system", "developer", "tool", "function": openai = true
            default: break
            }
            if message["tool_calls"] != nil { openai = true }
            for part in message["content"]?.arrayValue ?? [] {
                switch part["type"]?.stringValue {
                case "image_url", "input_audio", "file", "refusal": openai = true
                case "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "search_result": anthropic = true
                default: break
                }
            }
        }
        if openai == anthropic { return nil }
        return openai ? .openai : .anthropic
    }

    /// The request in `target`'s format. `route` names the route in errors.
    static func adapt(_ body: [String: JSONValue], to target: Format, route: String) throws(ProviderFailure) -> [String: JSONValue] {
        guard let source = format(of: body), source != target else { return body }
        func refuse(_ what: String) -> ProviderFailure {
            ProviderFailure(.invalidRequest, "route \(route): the request cannot be translated from the \(source.title) to the "
                            + "\(target.title) format: \(what) is not translated between formats")
        }
        let common: Set<String> = ["messages", "max_tokens", "temperature", "top_p", "tools", "tool_choice", "stream", "model"]
        let own: Set<String> = source == .openai ? ["max_completion_tokens", "stop"] : ["system", "stop_sequences"]
        for key in body.keys.sorted() where !common.contains(key) && !own.contains(key) {
            throw refuse("the field \(key)")
        }
        var out: [String: JSONValue] = [:]
        var messages: [JSONValue] = []
        var system: [String] = []
        if source == .anthropic, let value = body["system"] {
            system.append(try text(value, what: "a system block that is not text", refuse))
        }
        for (index, message) in (body["messages"]?.arrayValue ?? []).enumerated() {
            let role = message["role"]?.stringValue ?? ""
            if message["tool_calls"] != nil || role == "tool" || role == "function" {
                throw refuse("messages[\(index)] (tool calls and tool results)")
            }
            let content = message["content"] ?? .string("")
            _ = try text(content, what: "messages[\(index)] (content that is not text)", refuse)
            if role == "system" || role == "developer" {
                system.append(try text(content, what: "messages[\(index)]", refuse))
                continue
            }
            messages.append(.object(["role": .string(role), "content": content]))
        }
        switch target {
        case .anthropic:
            if !system.isEmpty { out["system"] = .string(system.joined(separator: "\n\n")) }
            out["messages"] = .array(messages)
            if let tokens = body["max_tokens"] ?? body["max_completion_tokens"] { out["max_tokens"] = tokens }
            if let temperature = body["temperature"]?.doubleValue { out["temperature"] = .number(min(temperature, 1)) }
            if let stop = body["stop"] {
                switch stop {
                case .string: out["stop_sequences"] = .array([stop])
                case .array: out["stop_sequences"] = stop
                default: break
                }
            }
            if let tools = body["tools"]?.arrayValue {
                out["tools"] = .array(try tools.enumerated().map { index, tool throws(ProviderFailure) -> JSONValue in
                    guard let function = tool["function"]?.objectValue, let name = function["name"] else {
                        throw refuse("tools[\(index)] (only function tools are)")
                    }
                    var converted: [String: JSONValue] = ["name": name, "input_schema": function["parameters"] ?? .object(["type": .string("object")])]
                    if let description = function["description"] { converted["description"] = description }
                    return .object(converted)
                })
            }
            switch body["tool_choice"] {
            case .string("auto")?: out["tool_choice"] = .object(["type": .string("auto")])
            case .string("none")?: out["tool_choice"] = .object(["type": .string("none")])
            case .string("required")?: out["tool_choice"] = .object(["type": .string("any")])
            case .object(let choice)?:
                guard let name = choice["function"]?["name"] else { throw refuse("this tool_choice") }
                out["tool_choice"] = .object(["type": .string("tool"), "name": name])
            case nil: break
            default: throw refuse("this tool_choice")
            }
        case .openai:
            if !system.isEmpty {
                messages.insert(.object(["role": .string("system"), "content": .string(system.joined(separator: "\n\n"))]), at: 0)
            }
            out["messages"] = .array(messages)
            if let tokens = body["max_tokens"] { out["max_tokens"] = tokens }
            if let temperature = body["temperature"] { out["temperature"] = temperature }
            if let stop = body["stop_sequences"] { out["stop"] = stop }
            if let tools = body["tools"]?.arrayValue {
                out["tools"] = .array(try tools.enumerated().map { index, tool throws(ProviderFailure) -> JSONValue in
                    guard let name = tool["name"], tool["input_schema"] != nil else {
                        throw refuse("tools[\(index)] (only custom tools with an input_schema are)")
                    }
                    var function: [String: JSONValue] = ["name": name, "parameters": tool["input_schema"] ?? .object([:])]
                    if let description = tool["description"] { function["description"] = description }
                    return .object(["type": .string("function"), "function": .object(function)])
                })
            }
            switch body["tool_choice"]?["type"]?.stringValue {
            case "auto"?: out["tool_choice"] = .string("auto")
            case "none"?: out["tool_choice"] = .string("none")
            case "any"?: out["tool_choice"] = .string("required")
            case "tool"?:
                guard let name = body["tool_choice"]?["name"] else { throw refuse("this tool_choice") }
                out["tool_choice"] = .object(["type": .string("function"), "function": .object(["name": name])])
            case nil where body["tool_choice"] == nil: break
            default: throw refuse("this tool_choice")
            }
        }
        if let topP = body["top_p"] { out["top_p"] = topP }
        return out
    }

    /// The text of a string or of an array of `text` parts; anything else is refused.
    private static func text(_ value: JSONValue, what: String, _ refuse: (String) -> ProviderFailure) throws(ProviderFailure) -> String {
        switch value {
        case .string(let text): return text
        case .array(let parts):
            var result: [String] = []
            for part in parts {
                guard part["type"]?.stringValue == "text", let text = part["text"]?.stringValue else { throw refuse(what) }
                result.append(text)
            }
            return result.joined(separator: "\n")
        default: throw refuse(what)
        }
    }
}
