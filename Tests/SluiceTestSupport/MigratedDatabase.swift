import Foundation
public import Logging
public import Sluice
public import SluicePostgres
import SluicePostgresTestSupport
import SluiceTestScope
public import Testing
import SluiceJSON

/// A fresh PostgreSQL database with the Sluice schema, one per test, so tests run in parallel
/// without sharing rows. The server comes from `SLUICE_TEST_DATABASE_URL` (set by scripts/test).
///
/// Owned by ``MigratedDatabaseTrait`` (`@Suite(.migratedDatabase())`): tests take it from
/// ``current``; the trait shuts the clients down when the test ends and drops the database after it,
/// also when it fails or throws.
public struct MigratedDatabase: Sendable {
    @TaskLocal static var scoped: MigratedDatabase?

    public let name: String
    public let url: String
    public let postgres: PostgresClient
    public let client: SluiceClient
    public let logger: Logger

    /// The database of the running test; throws when the test has no `.migratedDatabase()` trait.
    public static var current: MigratedDatabase {
        get throws {
            guard let scoped else { throw MissingTrait() }
            return scoped
        }
    }

    struct MissingTrait: Error, CustomStringConvertible {
        var description: String { "no migrated database: add .migratedDatabase() to the test or its suite" }
    }

    /// Creates a database named `prefix` + 16 random hex digits in the current ``TestScope``,
    /// which drops it after it ends, and unless `migrate` is false applies the Sluice schema.
    ///
    /// `autoCreateTenants` turns `sluice.settings.auto_create_tenants` back on (the schema's
    /// default is off since 0005): most tests enqueue for tenants they never created.
    static func make(prefix: String, poolSize: Int, migrate: Bool, autoCreateTenants: Bool = true) async throws -> MigratedDatabase {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let scope = try TestScope.required(for: "a migrated database")
        let database = try await TemporaryDatabase.create(prefix: prefix)
        let postgres = try database.client(pool: .init(maxConnections: poolSize), logger: logger)
        if migrate {
            try await SluiceSchema.migrate(postgres, logger: logger)
            if autoCreateTenants { _ = try await postgres.query("UPDATE sluice.settings SET auto_create_tenants = true") }
        }
        let client = SluiceClient(postgres: postgres, logger: logger)
        scope.onExit("SluiceClient") { await client.shutdown() }
        return MigratedDatabase(name: database.name, url: database.url, postgres: postgres, client: client, logger: logger)
    }

    /// The first column of the first row as an Int (for `SELECT count(*) …`).
    public func count(_ sql: String, _ binds: [(any PostgresEncodable)?] = []) async throws -> Int {
        try await postgres.query(sql, binds).rows[0].decode(Int.self, at: 0)
    }

    /// Creates a login role (roles belong to the whole server, not to the database) that is
    /// dropped after the test, with its database. `options` follow `CREATE ROLE name`.
    public func createRole(_ role: String, _ options: String = "LOGIN") async throws {
        try await TemporaryDatabase.dropRoleAfterTest(role)
        _ = try await postgres.query("CREATE ROLE \(unescaped: role) \(unescaped: options)")
    }
}

/// Gives each test (each case of a parameterised test) its own ``MigratedDatabase``.
public struct MigratedDatabaseTrait: TestTrait, SuiteTrait, TestScoping {
    public let prefix: String
    public let poolSize: Int
    /// false: the database starts empty (for tests that apply migrations themselves).
    public let migrate: Bool
    /// true (the default for tests): an unknown tenant's first job creates it, as before 0005.
    public let autoCreateTenants: Bool

    public init(prefix: String = "sluice_t_", poolSize: Int = 20, migrate: Bool = true, autoCreateTenants: Bool = true) {
        self.prefix = prefix
        self.poolSize = poolSize
        self.migrate = migrate
        self.autoCreateTenants = autoCreateTenants
    }

    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTestScope {
            let database = try await MigratedDatabase.make(prefix: prefix, poolSize: poolSize, migrate: migrate,
                                                          autoCreateTenants: autoCreateTenants)
            try await MigratedDatabase.$scoped.withValue(database) { try await function() }
        }
    }
}

extension TestTrait where Self == MigratedDatabaseTrait {
    /// A fresh migrated database for the test (empty with `migrate: false`), dropped after it ends.
    public static func migratedDatabase(prefix: String = "sluice_t_", poolSize: Int = 20, migrate: Bool = true,
                                        autoCreateTenants: Bool = true) -> Self {
        MigratedDatabaseTrait(prefix: prefix, poolSize: poolSize, migrate: migrate, autoCreateTenants: autoCreateTenants)
    }
}

extension SuiteTrait where Self == MigratedDatabaseTrait {
    /// A fresh migrated database (empty with `migrate: false`) for each test of the suite,
    /// dropped after the test ends.
    public static func migratedDatabase(prefix: String = "sluice_t_", poolSize: Int = 20, migrate: Bool = true,
                                        autoCreateTenants: Bool = true) -> Self {
        MigratedDatabaseTrait(prefix: prefix, poolSize: poolSize, migrate: migrate, autoCreateTenants: autoCreateTenants)
    }
}

/// An OpenAI-shaped request with one user message.
public func chat(_ text: String) -> JSONDocument {
    var writer = JSONWriter()
    writer.beginObject()
    writer.key("messages")
    writer.beginArray()
    writer.beginObject()
    writer.field("role", "user")
    writer.field("content", text)
    writer.endObject()
    writer.endArray()
    writer.endObject()
    return JSONDocument(bytes: writer.bytes)
}
