import Foundation
import Logging
import Sluice
import SluicePostgres

/// A fresh database per test, migrated, so tests run in parallel without sharing rows.
struct TestDatabase {
    let name: String
    let url: String
    let postgres: PostgresClient
    let client: SluiceClient

    static var baseURL: String {
        guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_DATABASE_URL"], !url.isEmpty else {
            fatalError("SLUICE_TEST_DATABASE_URL is not set: run the tests with scripts/test")
        }
        return url
    }

    static func make(function: String = #function) async throws -> TestDatabase {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let name = "sluice_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let admin = PostgresClient(configuration: try PostgresConfiguration(url: baseURL), pool: .init(maxConnections: 1), logger: logger)
        _ = try await admin.query("CREATE DATABASE \(name)")
        await admin.shutdown()
        var components = URLComponents(string: baseURL)!
        components.path = "/" + name
        let url = components.string!
        let postgres = PostgresClient(configuration: try PostgresConfiguration(url: url), pool: .init(maxConnections: 20), logger: logger)
        try await SluiceSchema.migrate(postgres, logger: logger)
        return TestDatabase(name: name, url: url, postgres: postgres, client: SluiceClient(postgres: postgres, logger: logger))
    }

    func close() async {
        await client.shutdown()
    }
}

func chat(_ text: String) -> JSONDocument {
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

func echoSpec(_ tenant: String = "acme", _ text: String = "hello", lane: Lane = .normal, key: String? = nil) -> JobSpec {
    JobSpec(tenant: tenant, lane: lane, provider: "echo", model: "echo", request: chat(text), idempotencyKey: key)
}
