import Foundation
import Sluice
import SluiceJSON

/// Accumulates an Anthropic Messages event stream: `message_start` (id, model, input and
/// cache usage), content blocks (`text_delta`; `input_json_delta` fragments of `tool_use`
/// blocks; thinking blocks are kept in the raw response only), `message_delta` (stop reason and
/// cumulative usage — the last value wins), and the required `message_stop`. `ping` is ignored;
/// an `error` event (possible after a 200) fails with the class of its error type. A stream that
/// ends before `message_stop` or carries malformed JSON is a `connection` failure with the usage
/// reported so far.
struct AnthropicStreamAccumulator: StreamAccumulator {
    struct Block: Sendable {
        var type: String
        var text = ""
        var id: String?
        var name: String?
        var json = ""
        var signature = ""
        /// The `content_block` object of `content_block_start`, for block types Sluice does
        /// not interpret (kept as they came).
        var start: JSONValue?
        var stopped = false
    }

    private var parser: SSEParser
    private(set) var blocks: [Int: Block] = [:]
    private(set) var usage: AnthropicWire.Usage?
    private(set) var stopReason: String?
    private var stopSequence: String?
    private(set) var model: String?
    private var id: String?
    private(set) var isComplete = false
    private var sawFirstToken = false
    private(set) var events = 0

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

    private mutating func consume(_ sse: SSEEvent) throws(ProviderFailure) {
        if isComplete { return }
        let event: AnthropicWire.Event
        do {
            event = try JSONReader.read(AnthropicWire.Event.self, from: sse.dataBytes)
        } catch {
            throw ProviderFailure(.connection, "malformed stream event (invalid JSON) after \(events) events", usage: reportedUsage)
        }
        events += 1
        let type = event.type ?? sse.type
        switch type {
        case "message_start":
            if let message = event.message {
                id = message.id
                model = message.model
                if let start = message.usage {
                    var merged = usage ?? AnthropicWire.Usage()
                    merged.merge(start)
                    usage = merged
                }
            }
        case "content_block_start":
            let index = event.index ?? blocks.count
            let start = event.contentBlock
            var block = Block(type: start?["type"]?.stringValue ?? "text", start: start)
            block.id = start?["id"]?.stringValue
            block.name = start?["name"]?.stringValue
            if let text = start?["text"]?.stringValue, !text.isEmpty {
                block.text = text
                sawFirstToken = true
            }
            if block.type == "tool_use" { sawFirstToken = true }
            blocks[index] = block
        case "content_block_delta":
            let index = event.index ?? 0
            var block = blocks[index] ?? Block(type: "text")
            if let delta = event.delta {
                switch delta.type {
                case "text_delta":
                    if let text = delta.text, !text.isEmpty {
                        block.text += text
                        sawFirstToken = true
                    }
                case "input_json_delta":
                    block.json += delta.partialJSON ?? ""
                    sawFirstToken = true
                case "thinking_delta":
                    block.text += delta.thinking ?? ""
                case "signature_delta":
                    block.signature += delta.signature ?? ""
                default:
                    break  // future delta types: ignored, never fatal
                }
            }
            blocks[index] = block
        case "content_block_stop":
            if let index = event.index { blocks[index]?.stopped = true }
        case "message_delta":
            if let reason = event.delta?.stopReason { stopReason = reason }
            if let sequence = event.delta?.stopSequence { stopSequence = sequence }
            if let delta = event.usage {
                var merged = usage ?? AnthropicWire.Usage()
                merged.merge(delta)
                usage = merged
            }
        case "message_stop":
            isComplete = true
        case "ping":
            break
        case "error":
            let errorType = event.error?.type
            let message = event.error?.message ?? errorType ?? "unknown"
            throw ProviderFailure(
                ErrorMapping.errorClass(anthropicType: errorType, message: message),
                "stream error event: \(errorType ?? "error"): \(message)", usage: reportedUsage
            )
        default:
            break  // unknown event types are ignored, as the API versioning policy asks
        }
    }

    func finish() throws(ProviderFailure) -> Completion {
        guard isComplete else {
            throw ProviderFailure(
                .connection, "stream ended without message_stop after \(events) events (truncated response)",
                usage: reportedUsage
            )
        }
        guard let usage else {
            throw ProviderFailure(.connection, "stream ended without usage (no message_start)", usage: nil)
        }
        var text = ""
        var calls: [ToolCall] = []
        var content: [JSONValue] = []
        for (index, block) in blocks.sorted(by: { $0.key < $1.key }) {
            switch block.type {
            case "text":
                text += block.text
                content.append(.object(["type": .string("text"), "text": .string(block.text)]))
            case "tool_use":
                let arguments = block.json.isEmpty ? "{}" : block.json
                guard let input = try? JSONValue.parse(Array(arguments.utf8)) else {
                    if stopReason == "max_tokens" {
                        calls.append(ToolCall(id: block.id ?? "toolu_\(index)", name: block.name ?? "", arguments: arguments))
                        continue
                    }
                    throw ProviderFailure(.serverError, "tool_use block \(index) has input that is not valid JSON", usage: usage.normalized)
                }
                guard let name = block.name, !name.isEmpty else {
                    throw ProviderFailure(.serverError, "tool_use block \(index) has no name", usage: usage.normalized)
                }
                let id = block.id ?? "toolu_\(index)"
                calls.append(ToolCall(id: id, name: name, arguments: arguments))
                content.append(.object(["type": .string("tool_use"), "id": .string(id), "name": .string(name), "input": input]))
            case "thinking":
                content.append(.object(["type": .string("thinking"), "thinking": .string(block.text), "signature": .string(block.signature)]))
            default:
                if let start = block.start { content.append(start) }
            }
        }
        if stopReason == "refusal" && text.isEmpty && calls.isEmpty {
            throw ProviderFailure(.contentFilter, "the provider refused the request (stop_reason refusal)", usage: usage.normalized)
        }
        var raw: [String: JSONValue] = [
            "type": .string("message"), "role": .string("assistant"), "content": .array(content),
            "stop_reason": stopReason.map(JSONValue.string) ?? .null,
            "stop_sequence": stopSequence.map(JSONValue.string) ?? .null,
            "usage": usage.json,
        ]
        if let id { raw["id"] = .string(id) }
        if let model { raw["model"] = .string(model) }
        return Completion(
            text: text, toolCalls: calls, finishReason: stopReason, rawResponse: JSONValue.object(raw).serialized(),
            usage: usage.normalized, model: model
        )
    }

    /// Parses a non-streaming `message` body.
    static func parseResponse(_ body: [UInt8]) throws(ProviderFailure) -> Completion {
        let response: AnthropicWire.Response
        do {
            response = try JSONReader.read(AnthropicWire.Response.self, from: body)
        } catch {
            throw ProviderFailure(.serverError, "response is not a valid message object")
        }
        if let error = response.error {
            throw ProviderFailure(ErrorMapping.errorClass(anthropicType: error.type, message: error.message), "error: \(error.message ?? error.type ?? "unknown")")
        }
        guard let usage = response.usage else {
            throw ProviderFailure(.serverError, "response has no usage")
        }
        var text = ""
        var calls: [ToolCall] = []
        for (index, block) in (response.content ?? []).enumerated() {
            switch block["type"]?.stringValue {
            case "text":
                text += block["text"]?.stringValue ?? ""
            case "tool_use":
                guard let name = block["name"]?.stringValue, !name.isEmpty else {
                    throw ProviderFailure(.serverError, "tool_use block \(index) has no name", usage: usage.normalized)
                }
                calls.append(ToolCall(
                    id: block["id"]?.stringValue ?? "toolu_\(index)", name: name,
                    arguments: (block["input"] ?? .object([:])).jsonText
                ))
            default:
                break
            }
        }
        if response.stopReason == "refusal" && text.isEmpty && calls.isEmpty {
            throw ProviderFailure(.contentFilter, "the provider refused the request (stop_reason refusal)", usage: usage.normalized)
        }
        return Completion(
            text: text, toolCalls: calls, finishReason: response.stopReason, rawResponse: body,
            usage: usage.normalized, model: response.model
        )
    }
}
