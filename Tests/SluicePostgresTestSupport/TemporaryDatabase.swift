import Foundation
public import Logging
public import SluicePostgres
public import SluiceTestScope
public import Testing

/// A PostgreSQL database of its own on the server `SLUICE_TEST_DATABASE_URL` names (set by
/// scripts/test), created for a test or a suite and dropped — `WITH (FORCE)`, so connections
/// left open do not stop it — after that test or suite ends, however it ends (batched with the
/// other ended tests' databases once none is in use; see ``Graveyard``).
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
    /// current ``TestScope`` (so it comes after the teardown of everything registered later, such
    /// as the clients using it). See ``Graveyard`` for when the DROP runs.
    public static func create(prefix: String) async throws -> TemporaryDatabase {
        let scope = try TestScope.required(for: "a temporary database")
        let server = try serverURL()
        let name = prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        await Graveyard.shared.open()
        do {
            let admin = try await PostgresConnection.connect(configuration: try PostgresConfiguration(url: server), logger: logger)
            do {
                try await admin.execute("CREATE DATABASE \(name)")
                await admin.close()
            } catch {
                await admin.close()
                throw error
            }
        } catch {
            await Graveyard.shared.retire(server: server, database: nil)
            throw error
        }
        scope.onExit("DROP DATABASE \(name)") { await Graveyard.shared.retire(server: server, database: name) }
        guard var components = URLComponents(string: server) else { throw MissingEnvironment() }
        components.path = "/" + name
        let url = components.string ?? server
        return TemporaryDatabase(name: name, url: url, configuration: try PostgresConfiguration(url: url))
    }

    /// Drops the server-wide role `name` with the test databases (roles belong to the server,
    /// not to a database; they go after the databases that may refer to them).
    public static func dropRoleAfterTest(_ name: String) async throws {
        await Graveyard.shared.retire(server: try serverURL(), role: name)
    }

    /// Where the databases of ended tests wait for their DROP. Every `DROP DATABASE` forces an
    /// immediate checkpoint, which writes every dirty buffer of every *other* test database: run
    /// as each test ended, the drops of a full run made PostgreSQL write about four times as many
    /// buffers (≈1.2 GB instead of ≈0.3 GB for the database suites) while the other tests ran,
    /// and timing-sensitive tests failed. So a database is dropped once no test database is in
    /// use any more — at the latest when the last test using one ends — together with the others
    /// ended meanwhile; by then the checkpoints have almost nothing to write.
    actor Graveyard {
        static let shared = Graveyard()

        private var live = 0
        private var databases: [String] = []
        private var roles: [String] = []

        func open() { live += 1 }

        /// One test database fewer in use (`database` nil: its creation failed).
        func retire(server: String, database: String?) async {
            live -= 1
            if let database { databases.append(database) }
            await dropIfIdle(server: server)
        }

        func retire(server: String, role: String) async {
            roles.append(role)
            await dropIfIdle(server: server)
        }

        private func dropIfIdle(server: String) async {
            guard live == 0, !databases.isEmpty || !roles.isEmpty else { return }
            let (databases, roles) = (self.databases, self.roles)
            self.databases = []
            self.roles = []
            // On eight connections at once: concurrent DROPs share their checkpoints, and the
            // batch at the end of a full run (about 90 databases) takes well under a second.
            let lanes = min(8, databases.count)
            await withTaskGroup(of: Void.self) { group in
                for lane in 0..<lanes {
                    let names = stride(from: lane, to: databases.count, by: lanes).map { databases[$0] }
                    group.addTask { await Self.run(names.map { "DROP DATABASE IF EXISTS \($0) WITH (FORCE)" }, on: server) }
                }
            }
            await Self.run(roles.map { "DROP ROLE IF EXISTS \($0)" }, on: server)
        }

        /// Runs `statements` one after the other on a connection of their own; records failures.
        private static func run(_ statements: [String], on server: String) async {
            guard !statements.isEmpty else { return }
            do {
                let admin = try await PostgresConnection.connect(configuration: try PostgresConfiguration(url: server), logger: logger)
                for statement in statements {
                    do { try await admin.execute(statement) } catch { Issue.record("test cleanup failed: \(statement): \(error)") }
                }
                await admin.close()
            } catch {
                Issue.record("cannot connect for test cleanup (\(statements.count) statements): \(error)")
            }
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
    /// A fresh database for the test, dropped after it ends.
    public static func temporaryDatabase(prefix: String = "sluice_p_") -> Self {
        TemporaryDatabaseTrait(prefix: prefix, sharedBySuite: false)
    }
}

extension SuiteTrait where Self == TemporaryDatabaseTrait {
    /// A fresh database for each test of the suite (or one for the whole suite with
    /// `sharedBySuite`), dropped after it ends.
    public static func temporaryDatabase(prefix: String = "sluice_p_", sharedBySuite: Bool = false) -> Self {
        TemporaryDatabaseTrait(prefix: prefix, sharedBySuite: sharedBySuite)
    }
}
