import Foundation
import Sluice
import SluiceJSON
import SluiceMockProvider
import Testing
@testable import SluiceProviders
import SluiceSupport

@Suite("OpenAI provider against the mock")
struct OpenAIProviderTests {
    @Test(arguments: [true, false])
    func textUsageAndCost(stream: Bool) async throws {
        try await MockFixture.with { fixture in
            let prompt = "alpha beta gamma [[mock: tokens=5]]"
            let result = try await fixture.openAI().call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: prompt, stream: stream))
            #expect(result.text == MockProviderOutput.text(forPrompt: prompt, tokens: 5))
            let input = MockProviderOutput.inputTokens(texts: [prompt])
            #expect(result.usage == Usage(inputTokens: input, outputTokens: 5))
            let expectedCost = (Double(input) * 0.15 + 5 * 0.60) / 1_000_000
            #expect(abs((result.costUSD ?? -1) - expectedCost) < 1e-15)
            #expect(result.finishReason == "stop")
            #expect(result.httpStatus == 200)
            #expect(result.model.hasPrefix("gpt-4o-mini"))
            #expect(result.provider == "openai")
            #expect(stream ? result.timeToFirstToken != nil : result.timeToFirstToken == nil)
            let raw = try JSONValue.parse(result.rawResponse)
            #expect(raw["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue == result.text)
            #expect(raw["usage"]?["completion_tokens"]?.intValue == 5)
        }
    }

    @Test(arguments: [true, false])
    func cachedTokensArePartOfPromptTokens(stream: Bool) async throws {
        try await MockFixture.with { fixture in
            let prompt = String(repeating: "word ", count: 20) + "[[mock: tokens=3,cached=8]]"
            let result = try await fixture.openAI().call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: prompt, stream: stream))
            let promptTokens = MockProviderOutput.inputTokens(texts: [prompt])
            #expect(result.usage == Usage(inputTokens: promptTokens - 8, outputTokens: 3, cacheReadTokens: 8))
            let expectedCost = (Double(promptTokens - 8) * 0.15 + 3 * 0.60 + 8 * 0.075) / 1_000_000
            #expect(abs((result.costUSD ?? -1) - expectedCost) < 1e-15)
        }
    }

    @Test(arguments: [true, false])
    func parallelToolCalls(stream: Bool) async throws {
        try await MockFixture.with { fixture in
            let prompt = "lookup [[mock: tools=3]]"
            let result = try await fixture.openAI().call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: prompt, stream: stream))
            #expect(result.finishReason == "tool_calls")
            #expect(result.toolCalls.map(\.name) == ["tool_0", "tool_1", "tool_2"])
            for (index, call) in result.toolCalls.enumerated() {
                let arguments = try JSONValue.parse(Array(call.arguments.utf8))
                #expect(arguments["i"]?.intValue == index)
                #expect(arguments["q"]?.stringValue == "lookup")
                #expect(call.id.hasPrefix("call_"))
            }
            #expect(Set(result.toolCalls.map(\.id)).count == 3)
        }
    }

    @Test func maxOutputTokensFillsTheBody() async throws {
        try await MockFixture.with { fixture in
            let result = try await fixture.openAI().call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "a b", maxOutputTokens: 3))
            #expect(result.usage.outputTokens == 3)
            #expect(result.finishReason == "length")
        }
    }

    @Test func rateLimitHeadersOnSuccess() async throws {
        try await MockFixture.with(.init(port: 0, rpm: 100, tpm: 100_000)) { fixture in
            let result = try await fixture.openAI().call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "hi [[mock: tokens=2]]"))
            let limits = try #require(result.rateLimits)
            #expect(limits.requestsLimit == 100)
            #expect(limits.requestsRemaining == 99)
            #expect(limits.tokensLimit == 100_000)
            #expect(limits.requestsReset != nil)
        }
    }

    @Test func realRateLimit429() async throws {
        try await MockFixture.with(.init(port: 0, rpm: 1)) { fixture in
            let provider = fixture.openAI()
            _ = try await provider.call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "one [[mock: tokens=1]]"))
            let failure = try #require(await expectFailure { try await provider.call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "two")) })
            #expect(failure.errorClass == .rateLimited)
            #expect(failure.httpStatus == 429)
            #expect(failure.retryAfter != nil)
            #expect(failure.rateLimits?.requestsRemaining == 0)
        }
    }

    @Test(arguments: [
        ("status=429,retry_after_ms=1500", ErrorClass.rateLimited, 429),
        ("status=401", .auth, 401),
        ("status=403", .auth, 403),
        ("status=404", .notFound, 404),
        ("status=400", .invalidRequest, 400),
        ("status=400,context=1", .contextLength, 400),
        ("status=500", .serverError, 500),
        ("status=503", .serverError, 503),
        ("status=408", .timeout, 408),
        ("status=409", .rateLimited, 409),
    ])
    func errorStatuses(_ directive: String, _ expected: ErrorClass, _ status: Int) async throws {
        try await MockFixture.with { fixture in
            for stream in [true, false] {
                let failure = try #require(await expectFailure {
                    try await fixture.openAI().call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "x [[mock: \(directive)]]", stream: stream))
                })
                #expect(failure.errorClass == expected, "\(directive)")
                #expect(failure.httpStatus == status)
                #expect(!failure.message.isEmpty)
                if directive.contains("retry_after_ms=1500") {
                    #expect(failure.retryAfter == .milliseconds(1500))
                }
            }
        }
    }

    @Test func shouldRetryHeaderOverridesClass() async throws {
        try await MockFixture.with { fixture in
            let no = try #require(await expectFailure {
                try await fixture.openAI().call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "x [[mock: status=503,should_retry=false]]"))
            })
            #expect(no.shouldRetry == false)
            #expect(!no.isRetryable)
            let yes = try #require(await expectFailure {
                try await fixture.openAI().call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "x [[mock: status=400,should_retry=true]]"))
            })
            #expect(yes.shouldRetry == true)
            #expect(yes.isRetryable)
        }
    }

    @Test func failTimesThenSuccess() async throws {
        try await MockFixture.with { fixture in
            let call = chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "again [[mock: status=503,fail_times=2,tokens=2]]")
            let provider = fixture.openAI()
            for _ in 0..<2 {
                #expect(await expectFailure { try await provider.call(call) }?.errorClass == .serverError)
            }
            let result = try await provider.call(call)
            #expect(result.usage.outputTokens == 2)
        }
    }

    @Test func stalledStreamTimesOutViaIdleTimeout() async throws {
        try await MockFixture.with { fixture in
            let provider = fixture.openAI(timeouts: .init(connect: .seconds(5), firstByte: .seconds(5), idle: .milliseconds(300), total: .seconds(20)))
            let failure = try #require(await expectFailure {
                try await provider.call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "x [[mock: tokens=10,stall_after=2]]"))
            })
            #expect(failure.errorClass == .timeout)
            #expect(failure.usage == nil)  // OpenAI reports usage only at the end
        }
    }

    @Test(arguments: ["disconnect_after=2", "truncate=1", "malformed_after=2"])
    func cutStreamsAreConnectionFailures(_ fault: String) async throws {
        try await MockFixture.with { fixture in
            let failure = try #require(await expectFailure {
                try await fixture.openAI().call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "x y [[mock: tokens=6,\(fault)]]"))
            })
            #expect(failure.errorClass == .connection, "\(fault): \(failure.message)")
            #expect(failure.isRetryable)
            #expect(failure.usage == nil)
            #expect(failure.costUSD == nil)
        }
    }

    @Test func inStreamErrorFails() async throws {
        try await MockFixture.with { fixture in
            let failure = try #require(await expectFailure {
                try await fixture.openAI().call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "x [[mock: tokens=6,error_after=2]]"))
            })
            #expect(failure.errorClass.isRetryable)
            #expect(failure.httpStatus == 200)
        }
    }

    @Test func timeToFirstTokenIsMeasured() async throws {
        try await MockFixture.with { fixture in
            let result = try await fixture.openAI().call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "x [[mock: tokens=3,ttft_ms=150]]"))
            let ttft = try #require(result.timeToFirstToken)
            #expect(ttft >= .milliseconds(150))
            #expect(result.latency >= ttft)
        }
    }

    @Test func apiKeyNeverAppearsInFailures() async throws {
        let key = "sk-proj-SECRETSECRETSECRET0123456789"
        try await MockFixture.with(.init(port: 0, apiKeys: [.init("sk-the-right-key-000000")])) { fixture in
            let failure = try #require(await expectFailure {
                try await fixture.openAI(key: key).call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "x"))
            })
            #expect(failure.errorClass == .auth)
            for text in [failure.message, failure.description, String(reflecting: failure)] {
                #expect(!text.contains(key))
                #expect(!text.contains("SECRETSECRET"))
            }
        }
        // Even when the message itself carries the key (an echoing server), it is redacted.
        let echoed = SecretRedactor(secrets: [key]).redact("invalid key \(key)")
        #expect(!echoed.contains(key))
    }

    @Test func connectionRefusedIsConnection() async throws {
        try await MockFixture.with { fixture in
            let provider = OpenAIProvider(
                configuration: .init(name: "openai", kind: .openai, baseURL: "http://127.0.0.1:1/v1", apiKeys: [.init("k")]),
                httpClient: fixture.client, priceTable: fixture.priceTable, logger: fixture.logger
            )
            let failure = try #require(await expectFailure { try await provider.call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "x")) })
            #expect(failure.errorClass == .connection)
        }
    }

    @Test func cancellationAbortsTheCall() async throws {
        try await MockFixture.with { fixture in
            let provider = fixture.openAI()
            let clock = ContinuousClock()
            let start = clock.now
            let task = Task { try await provider.call(chatCall(provider: "openai", model: "gpt-4o-mini", prompt: "x [[mock: tokens=50,tps=5]]")) }
            try await Task.sleep(for: .milliseconds(300))
            task.cancel()
            let failure = try #require(await expectFailure { try await task.value })
            #expect(failure.errorClass == .cancelled)
            #expect(clock.now - start < .seconds(5))
        }
    }

    @Test func invalidRequestBodyNeverReachesTheNetwork() async throws {
        try await MockFixture.with { fixture in
            let call = ProviderCall(jobID: UUID(), tenant: "t", provider: "openai", model: "gpt-4o-mini", request: Array("[1,2]".utf8))
            let failure = try #require(await expectFailure { try await fixture.openAI().call(call) })
            #expect(failure.errorClass == .invalidRequest)
            #expect(fixture.mock.stats.requestsTotal == 0)
        }
    }

    @Test func unknownModelHasNilCost() async throws {
        try await MockFixture.with { fixture in
            let before = fixture.priceTable.unknownModelLookups
            let result = try await fixture.openAI().call(chatCall(provider: "openai", model: "my-private-model", prompt: "x [[mock: tokens=1]]"))
            #expect(result.costUSD == nil)
            #expect(fixture.priceTable.unknownModelLookups > before)
        }
    }
}
