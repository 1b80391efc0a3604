import ArgumentParser
import Foundation
import Sluice
import SluiceJSON
import SluicePostgres

/// `sluice routes set|show|delete`: fallback routes (stored in `sluice.routes`; every worker
/// applies a change on its next start of a route job, without a restart).
struct RoutesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes", abstract: "Set, show and delete fallback routes (a job names one with \"route\").",
        subcommands: [Set.self, Show.self, Delete.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or replace route NAME with its targets, tried in order. Applies on every worker's next admission.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "Route name (a-z, 0-9, '_', '-', '.').") var name: String
        @Argument(help: "Targets as provider/model, in order, e.g. anthropic/claude-sonnet-4-5 openai/gpt-4o.") var targets: [String]
        @Flag(name: .long, help: "Print the stored route as JSON.") var json = false

        func validate() throws {
            if targets.isEmpty { throw ValidationError("give at least one target (provider/model)") }
            for target in targets where RouteTarget(parsing: target) == nil {
                throw ValidationError("TARGETS: expected provider/model, e.g. openai/gpt-4o (got \(target))")
            }
        }

        func run() async throws {
            let logger = try options.makeLogger("sluice.routes")
            let postgres = PostgresClient(configuration: try options.postgresConfiguration(), logger: logger)
            let store = JobStore(postgres: postgres)
            let route: Route
            do {
                route = try await store.setRoute(Route(name: name, targets: targets.compactMap(RouteTarget.init(parsing:))))
            } catch {
                await postgres.shutdown()
                throw error
            }
            await postgres.shutdown()
            if json {
                print(RoutesCommand.json(route))
            } else {
                print("\(route.name): " + route.targets.map(\.description).joined(separator: " -> "))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show every route (or one) with its targets and where it came from.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "Only this route.") var name: String?
        @Flag(name: .long, help: "One JSON object per route and line.") var json = false

        func run() async throws {
            let logger = try options.makeLogger("sluice.routes")
            let postgres = PostgresClient(configuration: try options.postgresConfiguration(), logger: logger)
            let routes: [Route]
            do {
                routes = try await JobStore(postgres: postgres).routes().filter { name == nil || $0.name == name }
            } catch {
                await postgres.shutdown()
                throw error
            }
            await postgres.shutdown()
            if let name, routes.isEmpty { throw UsageError("unknown route \(name) (sluice routes show lists them)") }
            for route in routes {
                if json {
                    print(RoutesCommand.json(route))
                } else {
                    let source = route.source == .file ? "   (configuration file)" : ""
                    print("\(route.name): " + route.targets.map(\.description).joined(separator: " -> ") + source)
                }
            }
            if routes.isEmpty && !json { print("no routes") }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete route NAME (refused while queued or running jobs name it, unless --force: they then dead-letter).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "Route name.") var name: String
        @Flag(name: .long, help: "Delete even though jobs name it.") var force = false

        func run() async throws {
            let logger = try options.makeLogger("sluice.routes")
            let postgres = PostgresClient(configuration: try options.postgresConfiguration(), logger: logger)
            let deleted: Bool
            do {
                deleted = try await JobStore(postgres: postgres).deleteRoute(name, force: force)
            } catch {
                await postgres.shutdown()
                throw error
            }
            await postgres.shutdown()
            guard deleted else { throw UsageError("unknown route \(name) (sluice routes show lists them)") }
            print("\(name): deleted")
        }
    }

    /// `{"name", "targets": ["p/m", …], "source": "file"|"operator", "updated_at"}`.
    static func json(_ route: Route) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("name", route.name)
        w.key("targets")
        w.beginArray()
        for target in route.targets { w.string(target.description) }
        w.endArray()
        w.field("source", route.source.rawValue)
        w.field("updated_at", route.updatedAt.map(Timestamps.rfc3339))
        w.endObject()
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
