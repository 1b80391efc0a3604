public import Sluice

/// The providers and models job validation accepts: configured providers with their
/// configured models, else the price table's models for that provider.
public enum ProviderCatalog {
    /// Echo always; each configured provider with its configured models (else the price
    /// table's models of its kind); OpenAI and Anthropic with the price table's models unless
    /// configured under those names.
    public static func registered(configuration: ProvidersConfiguration, prices: PriceTable) -> [RegisteredProvider] {
        var result: [RegisteredProvider] = [RegisteredProvider(name: "echo", kind: .echo, models: ["echo"])]
        var names: Set<String> = ["echo"]
        for provider in configuration.providers where !names.contains(provider.name) {
            names.insert(provider.name)
            let kind = RegisteredProvider.Kind(rawValue: provider.kind.rawValue) ?? .openai
            let models = provider.models.isEmpty ? prices.models(forProvider: provider.kind.rawValue) : provider.models
            result.append(RegisteredProvider(name: provider.name, kind: kind, models: models))
        }
        for kind in [RegisteredProvider.Kind.openai, .anthropic] where !names.contains(kind.rawValue) {
            result.append(RegisteredProvider(name: kind.rawValue, kind: kind, models: prices.models(forProvider: kind.rawValue)))
        }
        return result
    }
}
