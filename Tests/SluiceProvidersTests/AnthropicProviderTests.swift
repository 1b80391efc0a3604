import Foundation
import Sluice
import SluiceJSON
import SluiceMockProvider
import Testing
@testable import SluiceProviders
import SluiceSupport

@Suite("Anthropic provider against the mock")
struct AnthropicProviderTests {
    let model = "claude-sonnet-4-5-20250929"

    @Test(arguments: [true, false])
    func textUsageAndCost(stream: Bool) async throws {
        try await MockFixture.with { fixture in
            let prompt = "one two three [[mock: tokens=7]]"
            let result = try await fixture.anthropic().call(chatCall(provider: "anthropic", model: model, prompt: prompt, system: "be terse", stream: stream))
            #expect(result.text == MockProviderOutput.text(forPrompt: prompt, tokens: 7))
            let input = MockProviderOutput.inputTokens(texts: ["be terse", prompt])
            #expect(result.usage == Usage(inputTokens: input, outputTokens: 7))
            let expectedCost = (Double(input) * 3 + 7 * 15) / 1_000_000
            #expect(abs((result.costUSD ?? -1) - expectedCost) < 1e-15)
            #expect(result.finishReason == "end_turn")
            #expect(result.model == model)
            #expect(stream ? result.timeToFirstToken != nil : result.timeToFirstToken == nil)
            let raw = try JSONValue.parse(result.rawResponse)
            #expect(raw["type"]?.stringValue == "message")
            #expect(raw["content"]?.arrayValue?.first?["text"]?.stringValue == result.text)
        }
    }

    @Test(arguments: [true, false])
    func cacheTokensAreAdditional(stream: Bool) async throws {
        try await MockFixture.with { fixture in
            let prompt = "cache me [[mock: tokens=2,cached=100,cache_write=40]]"
            let result = try await fixture.anthropic().call(chatCall(provider: "anthropic", model: model, prompt: prompt, stream: stream))
            let input = MockProviderOutput.inputTokens(texts: [prompt])
            #expect(result.usage == Usage(inputTokens: input, outputTokens: 2, cacheReadTokens: 100, cacheWriteTokens: 40))
            let expectedCost = (Double(input) * 3 + 2 * 15 + 100 * 0.3 + 40 * 3.75) / 1_000_000
            #expect(abs((result.costUSD ?? -1) - expectedCost) < 1e-15)
        }
    }

    @Test(arguments: [true, false])
    func parallelToolUse(stream: Bool) async throws {
        try await MockFixture.with { fixture in
            let result = try await fixture.anthropic().call(chatCall(provider: "anthropic", model: model, prompt: "find [[mock: tools=2]]", stream: stream))
            #expect(result.finishReason == "tool_use")
            #expect(result.toolCalls.map(\.name) == ["tool_0", "tool_1"])
            for (index, call) in result.toolCalls.enumerated() {
                let arguments = try JSONValue.parse(Array(call.arguments.utf8))
                #expect(arguments["i"]?.intValue == index)
                #expect(arguments["q"]?.stringValue == "find")
                #expect(call.id.hasPrefix("toolu_"))
            }
        }
    }

    @Test func maxTokensIsRequired() async throws {
        try await MockFixture.with { fixture in
            let failure = try #require(await expectFailure {
                try await fixture.anthropic().call(chatCall(provider: "anthropic", model: model, prompt: "x", maxOutputTokens: nil))
            })
            #expect(failure.errorClass == .invalidRequest)
            let result = try await fixture.anthropic().call(chatCall(provider: "anthropic", model: model, prompt: "a b c", maxOutputTokens: 2))
            #expect(result.usage.outputTokens == 2)
            #expect(result.finishReason == "max_tokens")
        }
    }

    @Test func rateLimitHeaders() async throws {
        try await MockFixture.with(.init(port: 0, rpm: 50, tpm: 40_000)) { fixture in
            let result = try await fixture.anthropic().call(chatCall(provider: "anthropic", model: model, prompt: "x [[mock: tokens=1]]"))
            let limits = try #require(result.rateLimits)
            #expect(limits.requestsLimit == 50)
            #expect(limits.requestsRemaining == 49)
            #expect(limits.tokensLimit == 40_000)
            #expect(limits.requestsReset != nil)
        }
    }

    @Test(arguments: [
        ("status=529", ErrorClass.overloaded, 529),
        ("status=429,retry_after_ms=2500", .rateLimited, 429),
        ("status=401", .auth, 401),
        ("status=404", .notFound, 404),
        ("status=400,context=1", .contextLength, 400),
        ("status=400", .invalidRequest, 400),
        ("status=500", .serverError, 500),
    ])
    func errorStatuses(_ directive: String, _ expected: ErrorClass, _ status: Int) async throws {
        try await MockFixture.with { fixture in
            for stream in [true, false] {
                let failure = try #require(await expectFailure {
                    try await fixture.anthropic().call(chatCall(provider: "anthropic", model: model, prompt: "x [[mock: \(directive)]]", stream: stream))
                })
                #expect(failure.errorClass == expected, "\(directive): \(failure.message)")
                #expect(failure.httpStatus == status)
                if directive.contains("retry_after_ms=2500") {
                    #expect(failure.retryAfter == .milliseconds(2500))
                }
            }
        }
    }

    @Test func errorEventAfter200() async throws {
        try await MockFixture.with { fixture in
            let failure = try #require(await expectFailure {
                try await fixture.anthropic().call(chatCall(provider: "anthropic", model: model, prompt: "x [[mock: tokens=6,error_after=2]]"))
            })
            #expect(failure.errorClass == .overloaded)
            #expect(failure.httpStatus == 200)
            // message_start reported input tokens before the error: kept, never invented.
            #expect(failure.usage?.inputTokens == MockProviderOutput.inputTokens(texts: ["x [[mock: tokens=6,error_after=2]]"]))
            #expect(failure.costUSD != nil)
        }
    }

    @Test(arguments: ["disconnect_after=2", "truncate=1", "malformed_after=2"])
    func cutStreamsAreConnectionFailures(_ fault: String) async throws {
        try await MockFixture.with { fixture in
            let prompt = "x y [[mock: tokens=6,\(fault)]]"
            let failure = try #require(await expectFailure {
                try await fixture.anthropic().call(chatCall(provider: "anthropic", model: model, prompt: prompt))
            })
            #expect(failure.errorClass == .connection, "\(fault): \(failure.message)")
            let reported = MockProviderOutput.inputTokens(texts: [prompt])
            // Usage reported before the cut (message_start's input tokens) is kept, never invented:
            // SluiceHTTP delivers chunks that arrived before a transport error ahead of the error.
            #expect(failure.usage?.inputTokens == reported)
        }
    }

    @Test func stalledStreamTimesOut() async throws {
        try await MockFixture.with { fixture in
            let provider = fixture.anthropic(timeouts: .init(connect: .seconds(5), firstByte: .seconds(5), idle: .milliseconds(300), total: .seconds(20)))
            let failure = try #require(await expectFailure {
                try await provider.call(chatCall(provider: "anthropic", model: model, prompt: "x [[mock: tokens=10,stall_after=2]]"))
            })
            #expect(failure.errorClass == .timeout)
            #expect(failure.usage != nil)
        }
    }

    @Test func apiKeyNeverAppearsInFailures() async throws {
        let key = "sk-ant-api03-SECRETSECRET0123456789"
        try await MockFixture.with(.init(port: 0, apiKeys: [.init("sk-ant-right-key-00000")])) { fixture in
            let failure = try #require(await expectFailure {
                try await fixture.anthropic(key: key).call(chatCall(provider: "anthropic", model: model, prompt: "x"))
            })
            #expect(failure.errorClass == .auth)
            #expect(!failure.description.contains(key) && !String(reflecting: failure).contains("SECRETSECRET"))
        }
    }
}
