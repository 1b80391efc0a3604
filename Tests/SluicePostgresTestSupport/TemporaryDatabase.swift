import Foundation
public import Logging
public import SluicePostgres
public import SluiceTestScope
public import Testing

/// A PostgreSQL database of its own on the server `SLUICE_TEST_DATABASE_URL` names (set by
/// scripts/test), created for a test or a suite and dropped — `WITH (FORCE)`, so connections
/// left open do not stop it — when that test or suite ends, however it ends.
///
/// Tests reach it through ``current``, set by ``TemporaryDatabaseTrait``
/// (`@Suite(.temporaryDatabase())`, `@Test(.temporaryDatabase())`).
public struct TemporaryDatabase: Sendable {
    @TaskLocal static var scoped: TemporaryDatabase?

    public let name: String
    /// The database's URL (for clients that take one, such as the `sluice` CLI).
    public let url: String
    public let configuration: PostgresConfiguration

    /// The database of the running test; throws when the test has no temporary database trait.
    public static var current: TemporaryDatabase {
        get throws {
            guard let scoped else { throw MissingTrait() }
            return scoped
        }
    }

    struct MissingTrait: Error, CustomStringConvertible {
        var description: String { "no temporary database: add .temporaryDatabase() (or .migratedDatabase()) to the test or its suite" }
    }

    struct MissingEnvironment: Error, CustomStringConvertible {
        var description: String { "SLUICE_TEST_DATABASE_URL is not set: run the tests with scripts/test" }
    }

    /// The test server's URL (its `postgres` database), from `SLUICE_TEST_DATABASE_URL`.
    public static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_DATABASE_URL"], !url.isEmpty else {
            throw MissingEnvironment()
        }
        return url
    }

    static let logger: Logger = {
        var logger = Logger(label: "sluice.tests.database")
        logger.logLevel = .warning
        return logger
    }()

    /// Creates a database named `prefix` + 16 random hex digits and registers its DROP with the
    /// current ``TestScope`` (so it runs after the teardown of everything registered later, such
    /// as the clients using it).
    public static func create(prefix: String) async throws -> TemporaryDatabase {
        let scope = try TestScope.required(for: "a temporary database")
        let server = try serverURL()
        let name = prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let admin = try await PostgresConnection.connect(configuration: try PostgresConfiguration(url: server), logger: logger)
        do {
            try await admin.execute("CREATE DATABASE \(name)")
            await admin.close()
        } catch {
            await admin.close()
            throw error
        }
        scope.onExit("DROP DATABASE \(name)") { await drop(name, server: server) }
        guard var components = URLComponents(string: server) else { throw MissingEnvironment() }
        components.path = "/" + name
        let url = components.string ?? server
        return TemporaryDatabase(name: name, url: url, configuration: try PostgresConfiguration(url: url))
    }

    private static func drop(_ name: String, server: String) async {
        do {
            let admin = try await PostgresConnection.connect(configuration: try PostgresConfiguration(url: server), logger: logger)
            do {
                try await admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            } catch {
                Issue.record("cannot drop test database \(name): \(error)")
            }
            await admin.close()
        } catch {
            Issue.record("cannot connect to drop test database \(name): \(error)")
        }
    }

    /// A connection to this database, closed when the current ``TestScope`` ends.
    public func connect(_ configure: (inout PostgresConfiguration) -> Void = { _ in }, logger: Logger? = nil) async throws -> PostgresConnection {
        var configuration = self.configuration
        configure(&configuration)
        let scope = try TestScope.required(for: "a PostgreSQL connection")
        return scope.adopt(try await PostgresConnection.connect(configuration: configuration, logger: logger ?? Self.logger))
    }

    /// A pool on this database, shut down when the current ``TestScope`` ends.
    public func client(
        pool: PostgresClient.Configuration = .init(), _ configure: (inout PostgresConfiguration) -> Void = { _ in }, logger: Logger? = nil
    ) throws -> PostgresClient {
        var configuration = self.configuration
        configure(&configuration)
        let scope = try TestScope.required(for: "a PostgreSQL pool")
        return scope.adopt(PostgresClient(configuration: configuration, pool: pool, logger: logger ?? Self.logger))
    }
}

extension TestScope {
    /// Closes `connection` when the scope ends (closing twice is harmless).
    @discardableResult
    public func adopt(_ connection: PostgresConnection) -> PostgresConnection {
        onExit("PostgreSQL connection") { await connection.close() }
        return connection
    }

    /// Shuts `client` down when the scope ends (shutting down twice is harmless).
    @discardableResult
    public func adopt(_ client: PostgresClient) -> PostgresClient {
        onExit("PostgreSQL pool") { await client.shutdown() }
        return client
    }
}

/// Gives each test its own ``TemporaryDatabase`` (and ``TestScope``), or with `sharedBySuite`
/// one database for a whole suite whose tests keep their data apart themselves (schemas,
/// unique names); each test still gets a scope of its own for its clients.
public struct TemporaryDatabaseTrait: TestTrait, SuiteTrait, TestScoping {
    public let prefix: String
    public let sharedBySuite: Bool

    public var isRecursive: Bool { true }

    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        if test.isSuite { return sharedBySuite ? self : nil }
        return testCase == nil ? nil : self
    }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTestScope {
            if sharedBySuite && !test.isSuite, TemporaryDatabase.scoped != nil {
                // The suite's database; this test only needs its own scope.
                try await function()
                return
            }
            let database = try await TemporaryDatabase.create(prefix: prefix)
            try await TemporaryDatabase.$scoped.withValue(database) { try await function() }
        }
    }
}

extension TestTrait where Self == TemporaryDatabaseTrait {
    /// A fresh database for the test, dropped when it ends.
    public static func temporaryDatabase(prefix: String = "sluice_p_") -> Self {
        TemporaryDatabaseTrait(prefix: prefix, sharedBySuite: false)
    }
}

extension SuiteTrait where Self == TemporaryDatabaseTrait {
    /// A fresh database for each test of the suite (or one for the whole suite with
    /// `sharedBySuite`), dropped when it ends.
    public static func temporaryDatabase(prefix: String = "sluice_p_", sharedBySuite: Bool = false) -> Self {
        TemporaryDatabaseTrait(prefix: prefix, sharedBySuite: sharedBySuite)
    }
}
