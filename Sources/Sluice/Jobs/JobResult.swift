public import Foundation

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
    /// USD of the whole job: every attempt that reported usage (failed ones too), nil when the
    /// model has no price.
    public var costUSD: Double?
    public var provider: String
    public var model: String
    public var latencyMilliseconds: Double?
    public var timeToFirstTokenMilliseconds: Double?
    public var createdAt: Date
}
