import Foundation
import Logging
import ServiceLifecycle
import Sluice
import SluicePostgres
import SluiceProviders
import SluiceTestSupport
import Testing
import SluiceWorker

/// A migrated database of its own plus helpers to run in-process workers with the echo provider.
/// Suites run with `.workerDatabase`, which creates the database before each test, shuts its
/// clients down when the test ends and drops it afterwards.
struct WorkerHarness {
    let db: MigratedDatabase
    var name: String { db.name }
    var url: String { db.url }
    var postgres: PostgresClient { db.postgres }
    var client: SluiceClient { db.client }
    var logger: Logger { db.logger }

    /// The running test's harness (its `.workerDatabase`).
    static var current: WorkerHarness {
        get throws { WorkerHarness(db: try MigratedDatabase.current) }
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
        try await db.count(sql, binds)
    }
}

extension TestTrait where Self == MigratedDatabaseTrait {
    /// A migrated database of its own for the test (``WorkerHarness/current``).
    static var workerDatabase: Self { MigratedDatabaseTrait(prefix: "sluice_w_", poolSize: 16) }
}

extension SuiteTrait where Self == MigratedDatabaseTrait {
    /// A migrated database of its own for each test of the suite (``WorkerHarness/current``).
    static var workerDatabase: Self { MigratedDatabaseTrait(prefix: "sluice_w_", poolSize: 16) }
}

func echo(_ tenant: String = "acme", _ text: String = "hello", lane: Lane = .normal, metadata: String? = nil,
          maxAttempts: Int? = nil, runAt: Date? = nil) -> JobSpec {
    JobSpec(tenant: tenant, lane: lane, provider: "echo", model: "echo", request: chat(text), runAt: runAt,
            maxAttempts: maxAttempts, metadata: metadata.map(JSONDocument.init))
}
