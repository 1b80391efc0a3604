import Foundation
import Logging
import ServiceLifecycle
import Sluice
import SluicePostgres
import SluiceProviders
import SluiceWorker

/// A migrated database of its own plus helpers to run in-process workers with the echo provider.
struct WorkerHarness {
    let name: String
    let url: String
    let postgres: PostgresClient
    let client: SluiceClient
    let logger: Logger

    static var baseURL: String {
        guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_DATABASE_URL"], !url.isEmpty else {
            fatalError("SLUICE_TEST_DATABASE_URL is not set: run the tests with scripts/test")
        }
        return url
    }

    static func make() async throws -> WorkerHarness {
        var logger = Logger(label: "worker-test")
        logger.logLevel = .warning
        let name = "sluice_w_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let admin = PostgresClient(configuration: try PostgresConfiguration(url: baseURL), pool: .init(maxConnections: 1), logger: logger)
        _ = try await admin.query("CREATE DATABASE \(name)")
        await admin.shutdown()
        var components = URLComponents(string: baseURL)!
        components.path = "/" + name
        let url = components.string!
        let postgres = PostgresClient(configuration: try PostgresConfiguration(url: url), pool: .init(maxConnections: 16), logger: logger)
        try await SluiceSchema.migrate(postgres, logger: logger)
        return WorkerHarness(name: name, url: url, postgres: postgres, client: SluiceClient(postgres: postgres, logger: logger), logger: logger)
    }

    /// Fast settings for tests: short lease, quick polls and retries.
    static func testConfiguration(concurrency: Int = 32) -> WorkerConfiguration {
        var configuration = WorkerConfiguration()
        configuration.concurrency = concurrency
        configuration.lease = .seconds(2)
        configuration.heartbeatInterval = .milliseconds(300)
        configuration.rescueInterval = .milliseconds(250)
        configuration.pollInterval = .milliseconds(200)
        configuration.retryBase = .milliseconds(20)
        configuration.retryCap = .milliseconds(100)
        configuration.shutdownGracePeriod = .seconds(5)
        configuration.pruneInterval = .seconds(3600)
        return configuration
    }

    func makeWorker(_ configuration: WorkerConfiguration = testConfiguration(), id: String? = nil) throws -> Worker {
        let prices = try PriceTable(logger: logger)
        let echo = EchoProvider(priceTable: prices)
        return try Worker(configuration: configuration, postgres: postgres,
                          providers: { $0 == "echo" ? echo : nil }, logger: logger, id: id)
    }

    /// Runs workers until `body` returns, then shuts them down gracefully.
    func withWorkers<T: Sendable>(_ workers: [Worker], _ body: @Sendable () async throws -> T) async throws -> T {
        let group = ServiceGroup(configuration: .init(services: workers.map { .init(service: $0) }, logger: logger))
        let runner = Task { try await group.run() }
        do {
            let value = try await body()
            await group.triggerGracefulShutdown()
            try await runner.value
            return value
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await runner.value
            throw error
        }
    }

    func count(_ sql: String, _ binds: [(any PostgresEncodable)?] = []) async throws -> Int {
        try await postgres.query(sql, binds).rows[0].decode(Int.self, at: 0)
    }

    func close() async { await client.shutdown() }
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

func echo(_ tenant: String = "acme", _ text: String = "hello", lane: Lane = .normal, metadata: String? = nil,
          maxAttempts: Int? = nil, runAt: Date? = nil) -> JobSpec {
    JobSpec(tenant: tenant, lane: lane, provider: "echo", model: "echo", request: chat(text), runAt: runAt,
            maxAttempts: maxAttempts, metadata: metadata.map(JSONDocument.init))
}
