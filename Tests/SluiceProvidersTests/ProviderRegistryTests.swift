import Foundation
import Sluice
import SluiceMockProvider
import Testing
@testable import SluiceProviders

@Suite("Provider registry")
struct ProviderRegistryTests {
    @Test func buildsProvidersFromEnvironmentAndFile() async throws {
        try await MockFixture.with { fixture in
            var configuration = try ProvidersConfiguration.fromEnvironment([
                "OPENAI_API_KEY": "sk-a", "OPENAI_BASE_URL": fixture.mock.openAIBaseURL.absoluteString,
                "ANTHROPIC_API_KEY": "sk-b", "ANTHROPIC_BASE_URL": fixture.mock.baseURL.absoluteString,
            ])
            try configuration.merge(yaml: """
            providers:
              - {name: local, kind: openai, base_url: "\(fixture.mock.openAIBaseURL.absoluteString)", api_keys: [k1, k2], models: [m1]}
            """, environment: [:])
            let registry = ProviderRegistry(configuration: configuration, httpClient: fixture.client, priceTable: fixture.priceTable, logger: fixture.logger)
            #expect(registry.names == ["anthropic", "echo", "local", "openai"])
            #expect(registry.knownModels["echo"] == ["echo"])
            #expect(registry.knownModels["local"] == ["m1"])
            #expect(registry.knownModels["openai"]?.contains("gpt-4o-mini") == true)
            #expect(registry.knownModels["anthropic"]?.contains("claude-sonnet-4-5") == true)
            #expect(registry.provider(named: "nope") == nil)

            for name in ["openai", "anthropic", "local", "echo"] {
                let provider = try #require(registry.provider(named: name))
                #expect(provider.name == name)
                let result = try await provider.call(chatCall(provider: name, model: name == "anthropic" ? "claude-haiku-4-5" : "gpt-4o-mini", prompt: "hello [[mock: tokens=2]]"))
                #expect(!result.text.isEmpty)
                #expect(result.provider == name)
            }
            // The local provider (kind openai, no own prices) prices by its kind.
            let local = try await registry.provider(named: "local")!.call(chatCall(provider: "local", model: "gpt-4o-mini", prompt: "x [[mock: tokens=1]]"))
            #expect(local.costUSD != nil)
        }
    }
}
