/// Names the Swift code and the `sluice` schema share: NOTIFY channels and advisory-lock ids.
/// The SQL side uses the same literals (`Migrations/R*.sql`); change both together.
public enum StoreNames {
    /// `NOTIFY sluice_jobs, '<lane>'`: jobs became runnable in a lane (enqueue, retry, rescue).
    public static let jobsChannel = "sluice_jobs"
    /// `NOTIFY sluice_cancel, '<job id>'`: a running job's cancel was requested.
    public static let cancelChannel = "sluice_cancel"
    /// `NOTIFY sluice_done, '<id>,<id>,…'`: jobs reached a terminal state (what `wait` listens for).
    public static let doneChannel = "sluice_done"
    /// Notified when limits, kill switches or tenants change (`sluice.limits_changed`): workers
    /// read limits again on their next admission.
    public static let limitsChannel = "sluice_limits"
    /// `NOTIFY sluice_webhooks`: webhook deliveries became due (the outbox trigger wrote some, or
    /// an operator redelivered some): dispatchers claim at once instead of at their next poll.
    public static let webhooksChannel = "sluice_webhooks"

    /// Transaction-level advisory lock that serialises claims (taken inside `sluice.claim`).
    public static let claimLock: Int64 = 7_305_692_411_130_281_001
    /// Transaction-level advisory lock that elects the one pruning worker.
    public static let pruneLock: Int64 = 7_305_692_411_130_281_002
    /// Session-level advisory lock held by the one worker process that samples queue depth
    /// for metrics (released when its session ends, so another process takes over).
    public static let queueSamplerLock: Int64 = 7_305_692_411_130_281_003
}
