import SluiceMockProvider
import Testing

@Suite("Mock OpenAI wire format")
struct MockOpenAITests {
    static func body(_ prompt: String, stream: Bool = false, usage: Bool = false, maxTokens: Int? = nil) -> String {
        var body = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
            + "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\(mockQuoted(prompt))}]}]"
        if stream { body += ",\"stream\":true" }
        if usage { body += ",\"stream_options\":{\"include_usage\":true}" }
        if let maxTokens { body += ",\"max_tokens\":\(maxTokens)" }
        return body + "}"
    }

    @Test func nonStreamingCompletionFollowsTheRules() async throws {
        try await withMock { mock in
            let prompt = "one two three"
            let r = try await MockClient.openAI(port: mock.port, body: Self.body(prompt, maxTokens: 5), mock: "cached=2")
            #expect(r.status == 200)
            let json = try #require(r.json)
            #expect(json[path: "object"] as? String == "chat.completion")
            #expect(json[path: "choices", "0", "message", "content"] as? String == MockProviderOutput.text(forPrompt: prompt, tokens: 5))
            #expect(json[path: "choices", "0", "finish_reason"] as? String == "length")
            let input = MockProviderOutput.inputTokens(texts: ["be brief", prompt])
            #expect(json[path: "usage", "prompt_tokens"] as? Int == input)
            #expect(json[path: "usage", "completion_tokens"] as? Int == 5)
            #expect(json[path: "usage", "total_tokens"] as? Int == input + 5)
            #expect(json[path: "usage", "prompt_tokens_details", "cached_tokens"] as? Int == 2)
            #expect(r.headers["x-request-id"]?.hasPrefix("req_") == true)
            #expect(r.headers["x-ratelimit-limit-requests"] != nil)
            #expect(r.headers["x-ratelimit-reset-tokens"] != nil)
        }
    }

    @Test func defaultLengthIsSixteenTokensAndStops() async throws {
        try await withMock { mock in
            let r = try await MockClient.openAI(port: mock.port, body: Self.body("a b"))
            let json = try #require(r.json)
            #expect(json[path: "usage", "completion_tokens"] as? Int == 16)
            #expect(json[path: "choices", "0", "finish_reason"] as? String == "stop")
        }
    }

    @Test func streamWithUsageHasRoleContentFinishUsageAndDone() async throws {
        try await withMock { mock in
            let prompt = "red green blue [[mock: tokens=4]]"
            let r = try await MockClient.openAI(port: mock.port, body: Self.body(prompt, stream: true, usage: true))
            #expect(r.status == 200)
            #expect(r.headers["content-type"]?.hasPrefix("text/event-stream") == true)
            #expect(r.completeBody)
            let events = r.events
            #expect(events.last?.data == "[DONE]")
            let chunks = r.jsonEvents.dropLast().map { $0 }
            #expect(chunks.allSatisfy { $0?[path: "object"] as? String == "chat.completion.chunk" })
            #expect(chunks.first??[path: "choices", "0", "delta", "role"] as? String == "assistant")
            let contents = chunks.compactMap { $0?[path: "choices", "0", "delta", "content"] as? String }.filter { !$0.isEmpty }
            #expect(contents == MockProviderOutput.tokens(forPrompt: prompt, tokens: 4))
            let finish = chunks.compactMap { $0?[path: "choices", "0", "finish_reason"] as? String }
            #expect(finish == ["stop"])
            let usageChunk = try #require(chunks.last ?? nil)
            #expect((usageChunk[path: "choices"] as? [any Sendable])?.isEmpty == true)
            #expect(usageChunk[path: "usage", "completion_tokens"] as? Int == 4)
            #expect(usageChunk[path: "usage", "prompt_tokens"] as? Int == MockProviderOutput.inputTokens(texts: ["be brief", prompt]))
        }
    }

    @Test func streamWithoutIncludeUsageHasNoUsageChunk() async throws {
        try await withMock { mock in
            let r = try await MockClient.openAI(port: mock.port, body: Self.body("x [[mock: tokens=2]]", stream: true))
            let chunks = r.jsonEvents.dropLast()
            #expect(r.events.last?.data == "[DONE]")
            #expect(chunks.allSatisfy { $0?[path: "usage"] == nil })
            #expect(chunks.count == 4)  // role, 2 content, finish
        }
    }

    @Test func parallelToolCallsStreamInterleavedFragments() async throws {
        try await withMock { mock in
            let r = try await MockClient.openAI(port: mock.port, body: Self.body("find cats", stream: true), mock: "tools=3")
            var arguments: [Int: String] = [:]
            var names: [Int: String] = [:]
            var fragmentsPerCall: [Int: Int] = [:]
            var order: [Int] = []
            for chunk in r.jsonEvents.dropLast() {
                guard let calls = chunk?[path: "choices", "0", "delta", "tool_calls"] as? [any Sendable] else { continue }
                for case let call as [String: any Sendable] in calls {
                    let index = try #require(call["index"] as? Int)
                    if let name = call[path: "function", "name"] as? String { names[index] = name }
                    let fragment = call[path: "function", "arguments"] as? String ?? ""
                    if !fragment.isEmpty {
                        arguments[index, default: ""] += fragment
                        fragmentsPerCall[index, default: 0] += 1
                        order.append(index)
                    }
                }
            }
            #expect(names == [0: "tool_0", 1: "tool_1", 2: "tool_2"])
            #expect(fragmentsPerCall.values.allSatisfy { $0 >= 2 })
            #expect(Array(order.prefix(3)) == [0, 1, 2])  // interleaved by index
            for i in 0..<3 {
                let parsed = try #require(MockJSONObject.parse(arguments[i] ?? ""))
                #expect(parsed["i"] as? Int == i)
                #expect(parsed["q"] as? String == ["find", "cats"][i % 2])
            }
            let finish = r.jsonEvents.compactMap { $0?[path: "choices", "0", "finish_reason"] as? String }
            #expect(finish == ["tool_calls"])
        }
    }

    @Test func nonStreamingToolCalls() async throws {
        try await withMock { mock in
            let r = try await MockClient.openAI(port: mock.port, body: Self.body("q"), mock: "tools=2")
            let json = try #require(r.json)
            let calls = try #require(json[path: "choices", "0", "message", "tool_calls"] as? [any Sendable])
            #expect(calls.count == 2)
            #expect(json[path: "choices", "0", "message", "tool_calls", "1", "function", "arguments"] as? String == "{\"i\":1,\"q\":\"q\"}")
            #expect(json[path: "choices", "0", "finish_reason"] as? String == "tool_calls")
        }
    }

    @Test func timeToFirstTokenDelaysTheFirstContentChunk() async throws {
        try await withMock { mock in
            let clock = ContinuousClock()
            let start = clock.now
            let r = try await MockClient.openAI(port: mock.port, body: Self.body("x", stream: true), mock: "ttft_ms=200,tps=50,tokens=3")
            #expect(clock.now - start >= .milliseconds(240))  // 200 ms + 2 tokens at 50/s (lower bound only)
            #expect(r.events.last?.data == "[DONE]")
        }
    }
}
