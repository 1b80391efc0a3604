import Logging
import SluicePostgres
import Testing

@testable import SluiceWorker

/// The error pattern (docs/ARCHITECTURE.md, "Errors"): codes compare by value, `description`
/// is redacted, `debugDescription` carries the detail.
@Suite("WorkerError")
struct WorkerErrorTests {
    @Test func codesCompareByValue() {
        var configuration = WorkerConfiguration()
        configuration.maxClaimBatch = 0
        let error = #expect(throws: WorkerError.self) { try configuration.validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.code != .database)
        #expect(Set([WorkerError.Code.database, .database, .childFailed]).count == 2)
        #expect(error?.description == "WorkerError.invalidConfiguration: maxClaimBatch must be at least 1")
        #expect(error.map(String.init(reflecting:)) == #"WorkerError(code: invalidConfiguration, message: "maxClaimBatch must be at least 1")"#)
    }

    @Test func databaseErrorDetailIsOnlyInDebugDescription() async throws {
        let secret = "worker-Db-Pw-5"
        var logger = Logger(label: "sluice.worker.error.tests")
        logger.logLevel = .critical
        let pg = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect(
                configuration: try PostgresConfiguration(url: "postgres://w:\(secret)@127.0.0.1:1/sluice"), logger: logger)
        }
        let underlying = try #require(pg)
        // As Worker.register() reports it.
        let error = WorkerError(.database, "registering the worker failed: \(underlying)", underlying: underlying)
        #expect(error.code == .database)
        #expect(error.description.hasPrefix("WorkerError.database: registering the worker failed: PostgresError.connectionFailed: "))
        #expect(String(reflecting: error).contains("underlying: PostgresError(code: connectionFailed, message: "))
        #expect(!String(describing: error).contains(secret))
        #expect(!String(reflecting: error).contains(secret))
    }
}
