/// A snapshot of the system for operators (`sluice stats`).
public struct QueueStats: Sendable {
    /// Jobs per state, in the store now (finished ones until they are pruned).
    public var queued: Int
    public var running: Int
    public var succeeded: Int
    public var dead: Int
    public var cancelled: Int
    /// Queued and running jobs per lane (every lane listed, in priority order).
    public var byLane: [(lane: String, queued: Int, running: Int)]
    /// Tenants with the most queued jobs (at most 20), with their running jobs.
    public var byTenant: [(tenant: String, queued: Int, running: Int)]
    /// Age in seconds of the oldest runnable queued job (nil: none queued).
    public var oldestQueuedSeconds: Double?
    /// Jobs that succeeded / died in the last 1, 5 and 15 minutes.
    public var succeededLast: (one: Int, five: Int, fifteen: Int)
    public var deadLast: (one: Int, five: Int, fifteen: Int)
    /// Dead letters not replayed yet.
    public var deadLetters: Int
    /// Worker processes with a heartbeat in the last 60 s, and their total slots.
    public var workers: Int
    public var workerSlots: Int
    /// Webhook deliveries waiting to be sent and failed ones.
    public var webhooksPending: Int
    public var webhooksFailed: Int
}
