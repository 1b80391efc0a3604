import Foundation
import SluicePostgres

/// The result of a succeeded job.
public struct JobResult: Sendable, Hashable {
    public var jobID: UUID
    public var tenant: String
    public var outputText: String?
    /// Tool calls as a JSON array of `{id, name, arguments}`.
    public var toolCalls: JSONDocument
    public var finishReason: String?
    public var rawResponse: JSONDocument?
    public var usage: Usage
    public var costUSD: Double?
    public var provider: String
    public var model: String
    public var latencyMilliseconds: Double?
    public var timeToFirstTokenMilliseconds: Double?
    public var createdAt: Date

    static let columns = """
        job_id, tenant, output_text, tool_calls, finish_reason, raw_response, input_tokens, output_tokens, \
        cache_read_tokens, cache_write_tokens, cost_usd::float8, provider, model, latency_ms, ttft_ms, created_at
        """

    init(row: PostgresRow) throws(PostgresError) {
        jobID = try row.decode(UUID.self, at: 0)
        tenant = try row.decode(String.self, at: 1)
        outputText = try row.decode(String?.self, at: 2)
        toolCalls = JSONDocument(bytes: try row.decode(PostgresJSON.self, at: 3).bytes)
        finishReason = try row.decode(String?.self, at: 4)
        rawResponse = try row.decode(PostgresJSON?.self, at: 5).map { JSONDocument(bytes: $0.bytes) }
        usage = Usage(
            inputTokens: try row.decode(Int.self, at: 6), outputTokens: try row.decode(Int.self, at: 7),
            cacheReadTokens: try row.decode(Int.self, at: 8), cacheWriteTokens: try row.decode(Int.self, at: 9))
        costUSD = try row.decode(Double?.self, at: 10)
        provider = try row.decode(String.self, at: 11)
        model = try row.decode(String.self, at: 12)
        latencyMilliseconds = try row.decode(Double?.self, at: 13)
        timeToFirstTokenMilliseconds = try row.decode(Double?.self, at: 14)
        createdAt = try row.decode(Date.self, at: 15)
    }
}
