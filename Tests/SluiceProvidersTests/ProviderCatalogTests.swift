import Logging
import Sluice
import SluiceProviders
import Testing

@Suite struct ProviderCatalogTests {
    /// What `sluice migrate` registers: echo always, configured providers with their models (or
    /// the price table's for their kind), and the built-in kinds unless configured by name.
    @Test func registeredProvidersComeFromConfigurationThenPriceTable() throws {
        let prices = try PriceTable(logger: Logger(label: "test"))
        let configuration = try ProvidersConfiguration.parse(yaml: """
            providers:
              - name: openai-eu
                kind: openai
                api_keys: [k]
                models: [gpt-4o-mini]
              - name: claude
                kind: anthropic
                api_keys: [k]
            """)
        let registered = ProviderCatalog.registered(configuration: configuration, prices: prices)
        let byName = Dictionary(uniqueKeysWithValues: registered.map { ($0.name, $0) })
        #expect(registered.first == RegisteredProvider(name: "echo", kind: .echo, models: ["echo"]))
        #expect(byName["openai-eu"] == RegisteredProvider(name: "openai-eu", kind: .openai, models: ["gpt-4o-mini"]))
        #expect(byName["claude"]?.kind == .anthropic)
        #expect(byName["claude"]?.models == prices.models(forProvider: "anthropic"))
        #expect(!(byName["claude"]?.models.isEmpty ?? true))
        // The built-in names are registered from the price table as well.
        #expect(byName["openai"]?.models == prices.models(forProvider: "openai"))
        #expect(byName["anthropic"]?.kind == .anthropic)
        #expect(Set(registered.map(\.name)).count == registered.count)
    }
}
