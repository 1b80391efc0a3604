import Foundation
import Logging
import Sluice
import SluiceJSON
import SluicePostgres

/// A fresh PostgreSQL database with the Sluice schema, one per test, so tests run in parallel
/// without sharing rows. The server comes from `SLUICE_TEST_DATABASE_URL` (set by scripts/test).
public struct MigratedDatabase: Sendable {
    public let name: String
    public let url: String
    public let postgres: PostgresClient
    public let client: SluiceClient
    public let logger: Logger

    public static var baseURL: String {
        guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_DATABASE_URL"], !url.isEmpty else {
            fatalError("SLUICE_TEST_DATABASE_URL is not set: run the tests with scripts/test")
        }
        return url
    }

    /// Creates and migrates a database named `prefix` + 16 random hex digits.
    public static func make(prefix: String = "sluice_t_", poolSize: Int = 20) async throws -> MigratedDatabase {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let name = prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let admin = PostgresClient(configuration: try PostgresConfiguration(url: baseURL), pool: .init(maxConnections: 1), logger: logger)
        _ = try await admin.query("CREATE DATABASE \(name)")
        await admin.shutdown()
        var components = URLComponents(string: baseURL)!
        components.path = "/" + name
        let url = components.string!
        let postgres = PostgresClient(configuration: try PostgresConfiguration(url: url), pool: .init(maxConnections: poolSize), logger: logger)
        try await SluiceSchema.migrate(postgres, logger: logger)
        return MigratedDatabase(name: name, url: url, postgres: postgres, client: SluiceClient(postgres: postgres, logger: logger), logger: logger)
    }

    /// The first column of the first row as an Int (for `SELECT count(*) …`).
    public func count(_ sql: String, _ binds: [(any PostgresEncodable)?] = []) async throws -> Int {
        try await postgres.query(sql, binds).rows[0].decode(Int.self, at: 0)
    }

    public func close() async {
        await client.shutdown()
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
