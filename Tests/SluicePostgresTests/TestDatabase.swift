import Foundation
import Logging
import SluicePostgresTestSupport
import SluiceTestScope
import Testing

@testable import SluicePostgres

/// Access to the throwaway server `scripts/test` starts. Suites run with
/// `.temporaryDatabase()`: each test (or suite) works in a database of its own, dropped after it
/// ends, and every connection and pool made here is closed when the test ends.
enum TestDatabase {
    static let applicationName = "sluice-postgres-tests"

    /// The running test's database, as this target's connections see it.
    static func configuration() throws -> PostgresConfiguration {
        var configuration = try TemporaryDatabase.current.configuration
        configuration.applicationName = applicationName
        return configuration
    }

    static let logger: Logger = {
        var logger = Logger(label: "sluice.postgres.tests")
        logger.logLevel = .warning
        return logger
    }()

    /// A connection to the test's database, closed when the test ends.
    static func connect() async throws -> PostgresConnection {
        try await TemporaryDatabase.current.connect({ $0.applicationName = applicationName }, logger: logger)
    }

    /// A pool on the test's database, shut down when the test ends.
    static func client(maxConnections: Int = 4, acquireTimeout: Duration = .seconds(10)) throws -> PostgresClient {
        try TemporaryDatabase.current.client(
            pool: .init(maxConnections: maxConnections, acquireTimeout: acquireTimeout),
            { $0.applicationName = applicationName }, logger: logger)
    }

    static func uniqueName(_ prefix: String) -> String {
        prefix + "_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
    }

    /// Runs `body` with a connection whose `search_path` is a fresh schema. The connection is
    /// the test's (closed when it ends); the schema goes with the database.
    static func withSchema<T>(_ body: (PostgresConnection, String) async throws -> T) async throws -> T {
        let connection = try await connect()
        let schema = uniqueName("t")
        try await connection.execute("CREATE SCHEMA \(schema); SET search_path TO \(schema)")
        return try await body(connection, schema)
    }
}
