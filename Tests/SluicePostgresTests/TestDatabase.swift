import Foundation
import Logging
import Testing

@testable import SluicePostgres

/// Access to the throwaway server `scripts/test` starts. Every test works in its own schema
/// (or temp tables), so suites run in parallel with everyone else's.
enum TestDatabase {
    struct MissingEnvironment: Error, CustomStringConvertible {
        var description: String {
            "SLUICE_TEST_DATABASE_URL is not set: run the tests with scripts/test --filter SluicePostgresTests"
        }
    }

    static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_DATABASE_URL"], !url.isEmpty else {
            throw MissingEnvironment()
        }
        return url
    }

    static func configuration() throws -> PostgresConfiguration {
        var configuration = try PostgresConfiguration(url: url())
        configuration.applicationName = "sluice-postgres-tests"
        return configuration
    }

    static let logger: Logger = {
        var logger = Logger(label: "sluice.postgres.tests")
        logger.logLevel = .warning
        return logger
    }()

    static func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(configuration: configuration(), logger: logger)
    }

    static func client(maxConnections: Int = 4, acquireTimeout: Duration = .seconds(10)) throws -> PostgresClient {
        PostgresClient(
            configuration: try configuration(),
            pool: .init(maxConnections: maxConnections, acquireTimeout: acquireTimeout),
            logger: logger)
    }

    static func uniqueName(_ prefix: String) -> String {
        prefix + "_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
    }

    /// Runs `body` with a connection whose `search_path` is a fresh schema, dropped afterwards.
    static func withSchema<T>(_ body: (PostgresConnection, String) async throws -> T) async throws -> T {
        let connection = try await connect()
        let schema = uniqueName("t")
        try await connection.execute("CREATE SCHEMA \(schema); SET search_path TO \(schema)")
        do {
            let value = try await body(connection, schema)
            try? await connection.execute("DROP SCHEMA \(schema) CASCADE")
            await connection.close()
            return value
        } catch {
            try? await connection.execute("DROP SCHEMA \(schema) CASCADE")
            await connection.close()
            throw error
        }
    }
}
