import Foundation
import Logging
public import SluicePostgres

/// The one place Swift meets the `sluice` schema: one typed method per `sluice.*` function and
/// per query the system runs. The submitter client, the worker, the CLI and the benchmarks reach
/// PostgreSQL only through it.
///
/// Rows are decoded by column name into typed structs (``Job``, ``JobResult``, …); statements
/// are ``PostgresQuery`` interpolations, so values are always binds. Every method throws a
/// ``SluiceError`` whose `operation` names the method (`"claim"`, `"finishAttempts"`, …); SQL
/// errors raised by the schema (SQLSTATE class SL) keep their field and rule.
///
/// The methods are grouped by who uses them: `JobStore+Submit.swift` (enqueue, validation,
/// wake-ups), `JobStore+Read.swift` (jobs, results, lists, cancel, workers),
/// `JobStore+Worker.swift` (claim, leases, completion, rescue, pruning, the worker registry) and
/// `JobStore+Registry.swift` (providers and models).
public struct JobStore: Sendable {
    /// The pool every statement runs on.
    public let postgres: PostgresClient

    /// A store on `postgres` (which the caller runs and shuts down).
    public init(postgres: PostgresClient) {
        self.postgres = postgres
    }

    /// Runs `body`, mapping any error to a ``SluiceError`` that names `operation`.
    @inline(__always)
    static func run<T>(_ operation: String, _ body: () async throws -> T) async throws(SluiceError) -> T {
        do {
            return try await body()
        } catch {
            throw SluiceError.from(error, operation: operation)
        }
    }

    @inline(__always)
    func run<T>(_ operation: String, _ body: () async throws -> T) async throws(SluiceError) -> T {
        try await Self.run(operation, body)
    }
}
