import Foundation
import Logging
import Testing

@testable import Sluice
@testable import SluicePostgres

/// The error pattern (docs/ARCHITECTURE.md, "Errors") for the domain module's two error types:
/// codes compare by value, `description` is redacted, `debugDescription` carries the detail.
@Suite("SluiceError and ProviderFailure")
struct SluiceErrorTests {
    @Test func codesCompareByValue() {
        let error = SluiceError.invalid("request.model", "known", "unknown model gpt-9")
        #expect(error.code == .invalidSpec)
        #expect(error.code != .queueFull)
        #expect(Set([SluiceError.Code.notFound, .notFound, .timeout]).count == 2)
        #expect(error.description == "SluiceError.invalidSpec: request.model: unknown model gpt-9")
        let notFound = SluiceError(code: .notFound, message: "job 42 not found", field: "id", rule: "exists")
        #expect(notFound.description == "SluiceError.notFound: job 42 not found [id: exists]")
    }

    @Test func operationLeadsTheDescription() {
        let plain = SluiceError(code: .database, message: "the connection was lost")
        #expect(plain.operation == nil)
        #expect(plain.description == "SluiceError.database: the connection was lost")
        let claim = SluiceError(code: .database, message: "the connection was lost", operation: "claim")
        #expect(claim.operation == "claim")
        #expect(claim.description == "claim: SluiceError.database: the connection was lost")
        #expect(String(reflecting: claim).hasPrefix(#"SluiceError(code: database, operation: "claim", message: "#))
        var later = plain
        later.operation = "complete"  // what a store layer in this module does to an error it passes on
        #expect(later.description.hasPrefix("complete: SluiceError.database: "))
    }

    @Test func databaseDetailIsOnlyInDebugDescription() {
        let pg = PostgresError(
            code: .server, message: "new row violates check constraint \"jobs_state_check\"", sqlState: "23514",
            detail: "Failing row contains (tok-Detail-Secret).", query: "UPDATE sluice.jobs SET state = $1 WHERE id = $2")
        let error = SluiceError.from(pg)
        #expect(error.code == .database)
        #expect(error.underlying?.sqlState == "23514")
        #expect(error.description == "SluiceError.database: new row violates check constraint \"jobs_state_check\"")
        let debug = String(reflecting: error)
        #expect(debug.contains("underlying: PostgresError(code: server"))
        #expect(debug.contains("tok-Detail-Secret"))
        #expect(debug.contains("UPDATE sluice.jobs SET state"))
        // Batch problems are detail too.
        let batch = SluiceError(
            code: .invalidSpec, message: "job 1: model: required (2 invalid jobs in the batch)", field: "model", rule: "required",
            batchErrors: [.init(index: 1, field: "model", rule: "required", message: "model: required"),
                          .init(index: 3, field: "lane", rule: "known", message: "lane: unknown lane gpu")])
        #expect(!batch.description.contains("unknown lane gpu"))
        #expect(String(reflecting: batch).contains("unknown lane gpu"))
    }

    @Test func databasePasswordIsInNeitherDescription() async throws {
        let secret = "db-Pw-Secret-77"
        var logger = Logger(label: "sluice.error.tests")
        logger.logLevel = .critical
        let postgres = PostgresClient(
            configuration: try PostgresConfiguration(url: "postgres://alice:\(secret)@127.0.0.1:1/sluice"),
            pool: .init(maxConnections: 1, acquireTimeout: .seconds(5)), logger: logger)
        let client = SluiceClient(postgres: postgres, logger: logger)
        let error = await #expect(throws: SluiceError.self) { _ = try await client.job(UUID()) }
        await client.shutdown()
        let thrown = try #require(error)
        #expect(thrown.code == .database)
        #expect(thrown.underlying?.code == .connectionFailed)
        #expect(String(reflecting: thrown).contains("underlying: PostgresError(code: connectionFailed"))
        #expect(!String(describing: thrown).contains(secret))
        #expect(!String(reflecting: thrown).contains(secret))
    }

    @Test func providerFailureCodesCompareByValue() {
        let failure = ProviderFailure(.rateLimited, "rate_limit_exceeded: slow down", httpStatus: 429, retryAfter: .seconds(2))
        #expect(failure.code == .rateLimited)
        #expect(failure.code != .overloaded)
        #expect(failure.code.errorClass == .rateLimited)
        #expect(ProviderFailure.Code.internal == ProviderFailure(.internal, "x").code)
        #expect(Set(ErrorClass.allCases.map { ProviderFailure($0, "x").code }).count == ErrorClass.allCases.count)
        #expect(failure.description == "ProviderFailure.rate_limited: rate_limit_exceeded: slow down (HTTP 429)")
        let debug = String(reflecting: failure)
        #expect(debug.hasPrefix(#"ProviderFailure(code: rate_limited, message: "rate_limit_exceeded: slow down", httpStatus: 429"#))
        #expect(debug.contains("retryAfter: 2.0 seconds"))
    }

    @Test func providerFailureNeverShowsAnAPIKey() {
        let key = "sk-proj-AbCdEf0123456789"
        let failure = ProviderFailure(
            .auth, "invalid_api_key: Incorrect API key provided: \(key). Header was Authorization: Bearer \(key)",
            httpStatus: 401, usage: Usage(inputTokens: 12), costUSD: 0.5,
            rateLimits: RateLimitSnapshot(requestsRemaining: 0))
        #expect(!failure.message.contains("AbCdEf0123456789"))
        #expect(failure.message == "invalid_api_key: Incorrect API key provided: sk-<redacted> Header was Authorization: Bearer <redacted>")
        for text in [failure.description, String(reflecting: failure), "\(failure)"] {
            #expect(!text.contains("AbCdEf0123456789"), "\(text)")
        }
        // The debug form carries what the description leaves out.
        let debug = String(reflecting: failure)
        #expect(debug.contains("inputTokens: 12"))
        #expect(debug.contains("costUSD: 0.5"))
        #expect(debug.contains("requestsRemaining: Optional(0)"))
    }
}
