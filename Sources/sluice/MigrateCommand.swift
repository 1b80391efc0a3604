import ArgumentParser
import Foundation
import Sluice
import SluicePostgres
import SluiceProviders

/// `sluice migrate [--status]`: applies the schema migrations and registers the configured
/// providers and models (what job validation checks against).
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Apply pending schema migrations (or list them with --status).")

    @OptionGroup var options: GlobalOptions

    @Flag(name: .long, help: "List applied and pending migrations; change nothing.")
    var status = false

    func run() async throws {
        let logger = try options.makeLogger("sluice.migrate")
        let postgres = PostgresClient(configuration: try options.postgresConfiguration(), logger: logger)
        if status {
            let status = try await SluiceSchema.status(postgres, logger: logger)
            for entry in status.versioned {
                let state = entry.appliedAt.map { "applied \(Timestamps.rfc3339($0))" } ?? "pending"
                print("versioned   \(entry.migration.fileName)  \(state)")
            }
            for entry in status.repeatable {
                let state = switch (entry.appliedAt, entry.current) {
                case (nil, _): "pending"
                case (let at?, true): "applied \(Timestamps.rfc3339(at))"
                case (let at?, false): "changed since \(Timestamps.rfc3339(at)), pending"
                }
                print("repeatable  \(entry.migration.fileName)  \(state)")
            }
            await postgres.shutdown()
            return
        }
        let report = try await SluiceSchema.migrate(postgres, logger: logger)
        let applied = report.versioned.map(\.fileName) + report.repeatable.map(\.fileName)
        print(applied.isEmpty ? "schema up to date" : "applied \(applied.count) migration(s): " + applied.joined(separator: ", "))
        let providers = try ProvidersConfiguration.load(environment: options.environment)
        let prices = try PriceTable(overrides: providers.priceOverrides, logger: logger)
        let registered = ProviderCatalog.registered(configuration: providers, prices: prices)
        let client = SluiceClient(postgres: postgres, logger: logger)
        try await client.register(providers: registered)
        print("registered providers: " + registered.map { "\($0.name) (\($0.models.count) models)" }.joined(separator: ", "))
        await postgres.shutdown()
    }
}

/// The providers and models job validation accepts: configured providers with their
/// configured models, else the price table's models for that provider.
enum ProviderCatalog {
    static func registered(configuration: ProvidersConfiguration, prices: PriceTable) -> [RegisteredProvider] {
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
