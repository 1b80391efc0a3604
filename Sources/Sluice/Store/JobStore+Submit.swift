import Foundation
public import SluicePostgres

extension JobStore {
    /// `sluice.enqueue_specs`: validates and inserts a JSON array of job specs, all or nothing,
    /// on `connection` (inside the caller's transaction, if it has one). With `notify` the
    /// function wakes the workers of the lanes it enqueued to (when the transaction commits);
    /// without, the caller does it after its commit (``notifyLanes(_:)``).
    /// - Returns: one entry per spec, in input order.
    public static func enqueue(specs: PostgresJSON, count: Int, notify: Bool,
                               on connection: PostgresConnection) async throws(SluiceError) -> [EnqueuedJob] {
        try await run("enqueue") {
            let result = try await connection.query("SELECT idx, id, created FROM sluice.enqueue_specs(\(specs)::jsonb, \(notify))")
            var jobs = [EnqueuedJob?](repeating: nil, count: count)
            for row in result.rows {
                let index = try row.decode(Int.self, column: "idx")
                guard jobs.indices.contains(index) else {
                    throw SluiceError(code: .database, message: "enqueue returned index \(index) for \(count) specs")
                }
                jobs[index] = EnqueuedJob(id: try row.decode(UUID.self, column: "id"), created: try row.decode(Bool.self, column: "created"))
            }
            return try jobs.map { job in
                guard let job else { throw SluiceError(code: .database, message: "enqueue returned fewer rows than specs") }
                return job
            }
        }
    }

    /// `sluice.enqueue_specs` on a pooled connection (one transaction), notifying the lanes
    /// itself. For callers that hold specs as raw JSON (the CLI's JSON Lines files).
    public func enqueue(specs: PostgresJSON, count: Int) async throws(SluiceError) -> [EnqueuedJob] {
        try await run("enqueue") {
            try await postgres.withConnection { connection in
                try await Self.enqueue(specs: specs, count: count, notify: true, on: connection)
            }
        }
    }

    /// `sluice.spec_errors`: every invalid spec of a JSON array, by index, with the field and
    /// rule it broke. Writes nothing.
    public func specProblems(_ specs: PostgresJSON) async throws(SluiceError) -> [SluiceError.SpecProblem] {
        try await run("specProblems") {
            let result = try await postgres.query("SELECT idx, field, rule, message FROM sluice.spec_errors(\(specs)::jsonb)")
            return try result.rows.map { row in
                SluiceError.SpecProblem(
                    index: try row.decode(Int.self, column: "idx"), field: try row.decode(String.self, column: "field"),
                    rule: try row.decode(String.self, column: "rule"), message: try row.decode(String.self, column: "message"))
            }
        }
    }

    /// `sluice.notify_lanes`: wakes the workers of these lanes (asynchronous commit).
    public func notifyLanes(_ lanes: [String]) async throws(SluiceError) {
        try await run("notifyLanes") {
            _ = try await postgres.query("SELECT sluice.notify_lanes(\(lanes)::text[])")
        }
    }
}

extension JobStore {
    /// `sluice.enqueue_batch`: the SQL API as services in other languages call it (validation,
    /// admission and the wake-up inside the function). Benchmarks compare it with the library.
    /// - Returns: how many ids it returned (one per spec).
    public func enqueueBatchFunction(_ specs: PostgresJSON) async throws(SluiceError) -> Int {
        try await run("enqueueBatch") {
            try await postgres.query("SELECT count(*) AS n FROM sluice.enqueue_batch(\(specs)::jsonb)").rows[0].decode(Int.self, column: "n")
        }
    }
}
