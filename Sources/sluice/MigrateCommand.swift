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
        if !providers.routes.isEmpty {
            // The configuration file's routes (never over a route an operator set).
            let written = try await JobStore(postgres: postgres).registerFileRoutes(providers.routes)
            print("routes from the configuration file: \(providers.routes.count) (\(written.count) written)")
        }
        await postgres.shutdown()
    }
}
