import Foundation
import Logging
import Sluice
import SluiceHTTP
import SluiceJSON
import SluiceMockProvider
import SluiceSupport
import Testing
@testable import SluiceProviders

/// An in-process mock provider (port 0) plus a shared HTTP client, for one test.
struct MockFixture {
    let mock: RunningMockProvider
    let client: HTTPClient
    let priceTable: PriceTable
    let logger: Logger

    static func with<R>(
        _ configuration: MockProviderConfiguration = .init(port: 0),
        _ body: (MockFixture) async throws -> R
    ) async throws -> R {
        var logger = Logger(label: "test.providers")
        logger.logLevel = .warning
        var mockConfiguration = configuration
        mockConfiguration.port = 0
        let mock = try await MockProviderServer.start(configuration: mockConfiguration, logger: logger)
        let client = HTTPClient(logger: logger)
        let fixture = MockFixture(mock: mock, client: client, priceTable: try PriceTable(logger: logger), logger: logger)
        do {
            let result = try await body(fixture)
            await client.shutdown()
            await mock.stop()
            return result
        } catch {
            await client.shutdown()
            await mock.stop()
            throw error
        }
    }

    func openAI(
        key: String = "sk-test-openai-key-0123456789", timeouts: ProvidersConfiguration.Timeouts = .init(),
        headers: [String: String] = [:]
    ) -> OpenAIProvider {
        OpenAIProvider(
            configuration: .init(
                name: "openai", kind: .openai, baseURL: mock.openAIBaseURL.absoluteString, apiKeys: [Redacted(key)],
                headers: headers, timeouts: timeouts
            ),
            httpClient: client, priceTable: priceTable, logger: logger
        )
    }

    func anthropic(
        key: String = "sk-ant-test-key-0123456789", timeouts: ProvidersConfiguration.Timeouts = .init(),
        headers: [String: String] = [:]
    ) -> AnthropicProvider {
        AnthropicProvider(
            configuration: .init(
                name: "anthropic", kind: .anthropic, baseURL: mock.baseURL.absoluteString, apiKeys: [Redacted(key)],
                headers: headers, timeouts: timeouts
            ),
            httpClient: client, priceTable: priceTable, logger: logger
        )
    }
}

/// A chat request whose only user message is `prompt` (directives go inline).
func chatCall(
    provider: String, model: String, prompt: String, system: String? = nil, stream: Bool = true,
    maxOutputTokens: Int? = 64
) -> ProviderCall {
    var body: [String: JSONValue] = ["messages": .array([.object(["role": .string("user"), "content": .string(prompt)])])]
    if let system { body["system"] = .string(system) }
    return ProviderCall(
        jobID: UUID(), tenant: "test", provider: provider, model: model, request: JSONValue.object(body).serialized(),
        maxOutputTokens: maxOutputTokens, stream: stream
    )
}

/// Runs `body`, requiring it to throw a ``ProviderFailure``, and returns it.
func expectFailure(
    _ body: () async throws -> ProviderResult, sourceLocation: SourceLocation = #_sourceLocation
) async -> ProviderFailure? {
    do {
        let result = try await body()
        Issue.record("expected a failure, got success with text \(result.text.prefix(80))", sourceLocation: sourceLocation)
        return nil
    } catch let failure as ProviderFailure {
        return failure
    } catch {
        Issue.record("expected a ProviderFailure, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
