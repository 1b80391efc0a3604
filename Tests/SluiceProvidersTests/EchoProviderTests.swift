import Foundation
import Logging
import Sluice
import SluiceJSON
import Testing
@testable import SluiceProviders

@Suite("Echo provider")
struct EchoProviderTests {
    let echo = EchoProvider(priceTable: try! PriceTable(logger: Logger(label: "test.echo")))

    func call(_ request: String, metadata: String = "{}", attempt: Int = 1, stream: Bool = true) -> ProviderCall {
        ProviderCall(
            jobID: UUID(), tenant: "t", provider: "echo", model: "echo", request: Array(request.utf8),
            stream: stream, metadata: Array(metadata.utf8), attempt: attempt
        )
    }

    @Test func echoesLastUserMessageOpenAIShape() async throws {
        let request = #"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"first"},{"role":"assistant","content":"ok"},{"role":"user","content":"hello there"}]}"#
        let result = try await echo.call(call(request))
        #expect(result.text == "hello there")
        #expect(result.finishReason == "stop")
        // characters: 8 + 5 + 2 + 11 = 26 → ceil(26/4) = 7; output 11 → 3
        #expect(result.usage == Usage(inputTokens: 7, outputTokens: 3))
        #expect(result.costUSD == 0)
        #expect(result.provider == "echo")
        #expect(result.timeToFirstToken != nil)
        let raw = try JSONValue.parse(result.rawResponse)
        #expect(raw["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue == "hello there")
        #expect(raw["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue == "stop")
        #expect(raw["object"]?.stringValue == "chat.completion")
        #expect(raw["id"]?.stringValue?.hasPrefix("echo-") == true)
        #expect(raw["usage"]?["prompt_tokens"]?.intValue == 7)
        #expect(raw["usage"]?["completion_tokens"]?.intValue == 3)
        #expect(raw["usage"]?["total_tokens"]?.intValue == 10)
    }

    @Test func anthropicShapeWithPartsAndSystem() async throws {
        let request = #"{"system":"sys","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"ab"},{"type":"image","source":{}},{"type":"text","text":"cd"}]}]}"#
        let result = try await echo.call(call(request, stream: false))
        #expect(result.text == "abcd")
        #expect(result.usage == Usage(inputTokens: 2, outputTokens: 1))  // 3 + 4 = 7 chars → 2
        #expect(result.timeToFirstToken == nil)
    }

    @Test func failsWithRequestedClassAndRetryAfter() async throws {
        await #expect {
            _ = try await echo.call(call(#"{"messages":[]}"#, metadata: #"{"echo_fail":"rate_limited","echo_retry_after_ms":1500}"#))
        } throws: { error in
            guard let failure = error as? ProviderFailure else { return false }
            return failure.errorClass == .rateLimited && failure.retryAfter == .milliseconds(1500)
        }
    }

    @Test func failsOnlyForTheFirstAttempts() async throws {
        let metadata = #"{"echo_fail":"server_error","echo_fail_attempts":2}"#
        let request = #"{"messages":[{"role":"user","content":"x"}]}"#
        for attempt in 1...2 {
            await #expect(throws: ProviderFailure.self) { _ = try await echo.call(call(request, metadata: metadata, attempt: attempt)) }
        }
        let result = try await echo.call(call(request, metadata: metadata, attempt: 3))
        #expect(result.text == "x")
    }

    @Test func unknownFailClassIsInvalidRequest() async {
        await #expect {
            _ = try await echo.call(call("{}", metadata: #"{"echo_fail":"nonsense"}"#))
        } throws: { ($0 as? ProviderFailure)?.errorClass == .invalidRequest }
    }

    @Test func delayIsCancellable() async throws {
        let clock = ContinuousClock()
        let task = Task { try await echo.call(call(#"{"messages":[]}"#, metadata: #"{"echo_delay_ms":60000}"#)) }
        try await Task.sleep(for: .milliseconds(50))
        let cancelledAt = clock.now
        task.cancel()
        await #expect {
            _ = try await task.value
        } throws: { ($0 as? ProviderFailure)?.errorClass == .cancelled }
        // Far from the 60 s delay; measured from the cancel, loose for a loaded machine.
        #expect(clock.now - cancelledAt < .seconds(10))
    }

    @Test func delayIsApplied() async throws {
        let result = try await echo.call(call(#"{"messages":[{"role":"user","content":"x"}]}"#, metadata: #"{"echo_delay_ms":30}"#))
        #expect(result.latency >= .milliseconds(30))
    }

    @Test func invalidJSONIsInvalidRequest() async {
        await #expect {
            _ = try await echo.call(call("{not json"))
        } throws: { ($0 as? ProviderFailure)?.errorClass == .invalidRequest }
    }
}
