public import Foundation
import SluicePostgres

extension JobStore {
    /// Every route (`sluice.routes`), by name.
    public func routes() async throws(SluiceError) -> [Route] {
        try await run("routes") {
            let result = try await postgres.query("SELECT name, targets, source, updated_at FROM sluice.routes ORDER BY name", [])
            return try result.rows.map { row in
                Route(name: try row.decode(String.self, column: "name"),
                      targets: try row.decode([String].self, column: "targets").compactMap(RouteTarget.init(parsing:)),
                      source: Route.Source(rawValue: try row.decode(String.self, column: "source")) ?? .operator,
                      updatedAt: try row.decode(Date.self, column: "updated_at"))
            }
        }
    }

    /// Creates or replaces a route (an operator's: the configuration file never overwrites it).
    /// Every target must be a registered provider/model (`sluice migrate` registers them);
    /// every worker applies the change on its next admission. Returns the route as stored.
    @discardableResult
    public func setRoute(_ route: Route) async throws(SluiceError) -> Route {
        try route.validate()
        let known = try await registeredModels()
        for (index, target) in route.targets.enumerated() {
            guard let models = known[target.provider] else {
                throw SluiceError.invalid("targets[\(index)]", "known",
                                          "unknown provider \(target.provider) in \(target); known providers: \(known.keys.sorted().joined(separator: ", "))")
            }
            guard models.contains(target.model) else {
                throw SluiceError.invalid("targets[\(index)]", "known",
                                          "unknown model \(target.model) for provider \(target.provider) (run sluice migrate after configuring it)")
            }
        }
        let stored = try await run("setRoute") {
            try await postgres.query("""
                INSERT INTO sluice.routes AS r (name, targets, source) VALUES (\(route.name), \(route.targets.map(\.description))::text[], 'operator')
                ON CONFLICT (name) DO UPDATE SET targets = excluded.targets, source = 'operator', updated_at = now(), updated_by = current_user
                RETURNING r.updated_at
                """)
        }
        var result = route
        result.source = .operator
        result.updatedAt = try? stored.first?.decode(Date.self, column: "updated_at")
        return result
    }

    /// Writes the configuration file's routes (`sluice migrate`): new ones are added, earlier
    /// file routes are replaced, routes an operator set are left alone. Targets are not checked
    /// against the registry (register the providers first); an unknown one fails naming
    /// `routes.<name>[i]`. Returns the names of the routes written.
    @discardableResult
    public func registerFileRoutes(_ routes: [Route]) async throws(SluiceError) -> [String] {
        guard !routes.isEmpty else { return [] }
        let known = try await registeredModels()
        for route in routes {
            try route.validate()
            for (index, target) in route.targets.enumerated() where known[target.provider]?.contains(target.model) != true {
                throw SluiceError.invalid("routes.\(route.name)[\(index)]", "known",
                                          "\(target) is not a registered provider/model (configure the provider and its models)")
            }
        }
        return try await run("registerFileRoutes") {
            try await postgres.withTransaction { connection in
                var written: [String] = []
                for route in routes {
                    let result = try await connection.query("""
                        INSERT INTO sluice.routes AS r (name, targets, source) VALUES (\(route.name), \(route.targets.map(\.description))::text[], 'file')
                        ON CONFLICT (name) DO UPDATE SET targets = excluded.targets, updated_at = now(), updated_by = current_user
                         WHERE r.source = 'file' AND r.targets IS DISTINCT FROM excluded.targets
                        RETURNING r.name
                        """)
                    written += try result.rows.map { try $0.decode(String.self, column: "name") }
                }
                return written
            }
        }
    }

    /// Deletes a route. Refused (`conflict`, with the count) while queued or running jobs name
    /// it, unless `force` (they then end as dead letters naming the missing route). Returns
    /// false when there was no such route.
    @discardableResult
    public func deleteRoute(_ name: String, force: Bool = false) async throws(SluiceError) -> Bool {
        try await run("deleteRoute") {
            try await postgres.withTransaction { connection in
                if !force {
                    let result = try await connection.query("""
                        SELECT count(*)::int AS n FROM sluice.jobs
                         WHERE provider = 'route' AND model = \(name) AND state IN ('queued', 'running')
                        """)
                    let waiting = try result.first?.decode(Int.self, column: "n") ?? 0
                    if waiting > 0 {
                        throw SluiceError(code: .conflict, message: "route \(name) is named by \(waiting) queued or running jobs; delete it with --force to dead-letter them",
                                          field: "name", rule: "in_use")
                    }
                }
                let deleted = try await connection.query("DELETE FROM sluice.routes WHERE name = \(name) RETURNING name")
                return !deleted.rows.isEmpty
            }
        }
    }
}
