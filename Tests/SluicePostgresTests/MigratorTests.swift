import Foundation
import SluicePostgresTestSupport
import SluiceTestScope
import Testing

@testable import SluicePostgres

@Suite(.temporaryDatabase(sharedBySuite: true)) struct MigratorTests {
    func makeDirectory(_ files: [String: String]) throws -> String {
        let dir = try TestScope.required(for: "a migrations directory").temporaryDirectory("sluice-migrations")
        for (name, sql) in files {
            try sql.write(toFile: dir + "/" + name, atomically: false, encoding: .utf8)
        }
        return dir
    }

    @Test func loadsSortsAndRejectsBadNames() throws {
        let dir = try makeDirectory([
            "0002_add_index.sql": "CREATE INDEX ON items (name);",
            "0001_create_items.sql": "CREATE TABLE items (id int, name text);",
            "0010_later.sql": "SELECT 1;",
            "README.md": "ignored",
        ])
        let migrations = try PostgresMigrator.load(directory: dir)
        #expect(migrations.map(\.version) == [1, 2, 10])
        #expect(migrations.map(\.name) == ["create_items", "add_index", "later"])
        #expect(migrations[0].fileName == "0001_create_items.sql")
        #expect(migrations[0].checksum.count == 16)
        #expect(migrations[0].checksum != migrations[1].checksum)

        let bad = try makeDirectory(["01-create.sql": "SELECT 1;"])
        let badError = #expect(throws: PostgresError.self) { try PostgresMigrator.load(directory: bad) }
        #expect(badError?.message.contains("01-create.sql") == true)
        let duplicate = try makeDirectory(["0001_a.sql": "SELECT 1;", "001_b.sql": "SELECT 2;"])
        let dupError = #expect(throws: PostgresError.self) { try PostgresMigrator.load(directory: duplicate) }
        #expect(dupError?.message.contains("duplicate migration version 1") == true)
    }

    @Test func appliesInOrderOnceAndDetectsEdits() async throws {
        let client = try TestDatabase.client()
        let schema = TestDatabase.uniqueName("mig")
        let migrator = PostgresMigrator(client: client, schema: schema, logger: TestDatabase.logger)
        let v1 = [
            PostgresMigration(version: 2, name: "add_column", sql: "ALTER TABLE items ADD COLUMN note text;"),
            PostgresMigration(version: 1, name: "create_items", sql: "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);"),
        ]
        #expect(try await migrator.status(v1).allSatisfy { $0.appliedAt == nil })
        let applied = try await migrator.migrate(v1)
        #expect(applied.map(\.version) == [1, 2])
        #expect(try await client.query("SELECT count(note) + count(*) FROM \(unescaped: schema).items").first?.decode(Int.self, at: 0) == 1)
        let recorded = try await client.query("SELECT version, name, checksum FROM \(unescaped: schema).schema_migrations ORDER BY version")
        #expect(try recorded.map { try $0.decode(String.self, column: "checksum") } == [v1[1].checksum, v1[0].checksum])
        #expect(try await migrator.migrate(v1).isEmpty)
        let status = try await migrator.status(v1)
        #expect(status.map(\.migration.version) == [1, 2])
        #expect(status.allSatisfy { $0.appliedAt != nil })

        var edited = v1
        edited[0].sql += " -- edited"
        edited[0].checksum = PostgresMigration(version: 2, name: "add_column", sql: edited[0].sql).checksum
        let error = await #expect(throws: PostgresError.self) { try await migrator.migrate(edited) }
        #expect(error?.code == .migration)
        #expect(error?.message.contains("0002_add_column.sql") == true)

        // A failing migration leaves nothing behind and names itself.
        let failing = v1 + [PostgresMigration(version: 3, name: "broken", sql: "CREATE TABLE x (id int); SELECT no_such_column FROM items;")]
        let failure = await #expect(throws: PostgresError.self) { try await migrator.migrate(failing) }
        #expect(failure?.sqlState == "42703")
        #expect(failure?.message.contains("0003_broken.sql") == true)
        #expect(try await client.query("SELECT to_regclass($1) IS NULL", ["\(schema).x"]).first?.decode(Bool.self, at: 0) == true)

    }

    @Test func concurrentMigrationsSerialise() async throws {
        let schema = TestDatabase.uniqueName("migc")
        let migrations = (1...5).map {
            // pg_sleep widens the window in which an unserialised second run would collide.
            PostgresMigration(version: $0, name: "step\($0)", sql: "SELECT pg_sleep(0.05); CREATE TABLE t\($0) (id int);")
        }
        let clients = try (0..<2).map { _ in try TestDatabase.client(maxConnections: 2) }
        let results = try await withThrowingTaskGroup(of: [Int].self) { group in
            for client in clients {
                group.addTask {
                    try await PostgresMigrator(client: client, schema: schema, logger: TestDatabase.logger)
                        .migrate(migrations).map(\.version)
                }
            }
            return try await group.reduce(into: [[Int]]()) { $0.append($1) }
        }
        #expect(results.flatMap { $0 }.sorted() == [1, 2, 3, 4, 5])
        let rows = try await clients[0].query("SELECT count(*) FROM \(unescaped: schema).schema_migrations")
        #expect(try rows.first?.decode(Int.self, at: 0) == 5)
    }
}
