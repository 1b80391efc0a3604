public import Sluice

/// How a worker process claims, runs and finishes jobs. Every field has a production default.
public struct WorkerConfiguration: Sendable {
    /// Jobs run at once by this process. Default 256: provider calls are slow network waits.
    public var concurrency: Int = 256
    /// Lanes served, in priority order. Default: all four.
    public var lanes: [Lane] = Lane.allCases
    /// Only these tenants' jobs (nil: every tenant). Default nil.
    public var tenants: [String]? = nil
    /// Slots kept for interactive jobs and light tenants: ordinary jobs never fill the last
    /// `interactiveReserve` slots, so an interactive job, or a job of a tenant with fewer than
    /// `interactiveReserve` jobs running, starts at once even when the process is busy with
    /// another tenant's backlog. Default nil: ⌈concurrency / 20⌉ when this worker serves
    /// more than one lane or tenant, else 0.
    public var interactiveReserve: Int? = nil

    /// The reserve in effect (see ``interactiveReserve``).
    public var effectiveInteractiveReserve: Int {
        if let interactiveReserve { return interactiveReserve }
        guard concurrency > 1, lanes.count > 1 || (tenants?.count ?? 2) > 1 else { return 0 }
        return (concurrency + 19) / 20
    }

    /// CPU headroom: while the process's scheduling lag (how late a sleeping task wakes up, i.e.
    /// how long a ready task waits for a thread) stays above this, the worker runs fewer ordinary
    /// jobs (down to an eighth of its slots), so a job that arrives now — a NOTIFY to handle, a
    /// claim to make, a task to start — is not queued behind a backlog the CPU cannot keep up
    /// with. Interactive jobs and light tenants' jobs (the reserve) are not limited. Calls that
    /// wait on the network keep the lag near zero, so it only binds when the CPU is the limit
    /// (short calls, an overloaded host), and it costs throughput there. Default nil (off: every
    /// slot is used however late tasks run); `sluice worker --scheduling-lag-target-ms 2` turns it
    /// on. See docs/ARCHITECTURE.md, "Fairness", for what it measured.
    public var schedulingLagTarget: Duration? = nil

    /// Most jobs claimed by one statement. When more slots are free the worker claims again at
    /// once, after giving the claimed jobs their tasks, so many free slots become several
    /// consecutive claims. Default 128: a claim holds the claim lock (which every worker's claims
    /// share) for a time that grows with the jobs it takes, and returns its jobs only together;
    /// claims of up to 1,000 held it for tens of milliseconds under load, and a quiet tenant's job,
    /// first in order, waited for them and then came back with hundreds of others
    /// (docs/BENCHMARKS.md, "Fair queueing" and "Sustained load").
    public var maxClaimBatch: Int = 128
    /// Jobs a process may hold claimed beyond its free slots, started in claim order as slots
    /// free up (in the task of the job that just finished, without waiting for a claim). Each
    /// claim can then take more jobs, so a small pool of short calls needs fewer claims (claims
    /// are serial: docs/BENCHMARKS.md, "Jobs per slot"). Jobs held ahead are `running` in the
    /// store (their leases are renewed; they count against their tenant's max_concurrency),
    /// their timeout starts when their call does, a cancel or a lost lease ends them before
    /// they start, and on shutdown those not started go back to the queue without using an
    /// attempt. Reserved slots go only to privileged jobs (interactive, light tenants), never
    /// to jobs that could wait ahead; a privileged job is held ahead only while every slot,
    /// reserved ones included, is busy. Default 0 (off).
    public var claimAhead: Int = 0
    /// Send the `sluice_done` notification of a completion group after the group commits, from
    /// a separate asynchronously committed statement, instead of inside the completion's
    /// synchronously committed transaction (where PostgreSQL's notify commit lock is held
    /// through the WAL flush, and every other notifying commit, such as an enqueue's wake-up,
    /// queues behind it). Default true; false is the behaviour before, kept for comparison.
    public var notifyDoneAfterCommit: Bool = true
    /// Most tenants one claim reads per lane, in fair-queue order (lowest virtual clock first;
    /// a claim of N jobs reads at most N + 8 anyway). Tenants beyond it are reached by later
    /// claims as the clocks of those before them move. Default 256.
    public var claimTenantWindow: Int = 256
    /// Lease on a claimed job, renewed while it runs. A worker process that dies under its
    /// supervisor has its jobs rescued at once (`sluice worker --processes`); a job whose host or
    /// supervisor is lost is rescued after at most `lease + rescueInterval` (+20 % jitter of the
    /// sweep): 12.4 s with the defaults. Default 10 s (it was 30 s; renewing 512 leases costs one
    /// statement of a few milliseconds per heartbeat, docs/bench/reliability.md).
    public var lease: Duration = .seconds(10)
    /// How often leases are renewed and cancel requests polled (the fallback to NOTIFY).
    /// Default 3 s (under a third of the lease: two heartbeats may fail before it expires).
    public var heartbeatInterval: Duration = .seconds(3)
    /// While claims return jobs, how long the claim loop waits for an eighth of the slots to
    /// free before claiming what is free (a NOTIFY claims at once). Default 20 ms.
    public var claimWindow: Duration = .milliseconds(20)
    /// How often running attempts are checked against their job's timeout (an attempt may run
    /// up to this much past it). Default 100 ms.
    public var timeoutResolution: Duration = .milliseconds(100)
    /// How often this worker looks for expired leases (jittered ±20 %). Sweeps are paced
    /// cluster-wide to one per half of this interval, however many processes run (a sweep reads
    /// the rows of the jobs running longer than their first lease). Default 2 s.
    public var rescueInterval: Duration = .seconds(2)
    /// Fallback poll when no NOTIFY arrives (scheduled jobs, lost notifications); jittered ±20 %.
    /// Default 1 s.
    public var pollInterval: Duration = .seconds(1)
    /// A lower lane whose oldest runnable job waited longer than this gets a share of each
    /// claim (anti-starvation). Default 10 s.
    public var starvationAfter: Duration = .seconds(10)
    /// Completions are written in groups: at most this many per statement… Default 500.
    public var completionBatch: Int = 500
    /// …or after this long. Default 25 ms: each completion statement commits synchronously (a
    /// WAL flush), and at 5 ms two busy processes kept the WAL device flushing almost all the
    /// time, so every other commit (a submitter's enqueue) waited behind a completion's fsync.
    /// Measured at 25 ms against 5 ms: end to end +4-7 %, a quiet tenant's call start p99
    /// beside 1 s calls 14-19 ms instead of 23-28 ms (docs/bench/queue.md). A result becomes
    /// visible up to this much later.
    public var completionInterval: Duration = .milliseconds(25)
    /// Retry backoff: attempt n waits a uniformly random time in [0, min(cap, base·2ⁿ⁻¹)]
    /// (full jitter) unless the provider sent Retry-After. Defaults 1 s and 5 min.
    public var retryBase: Duration = .seconds(1)
    public var retryCap: Duration = .seconds(300)
    /// Longest Retry-After honoured as such (longer values are capped). Default 10 min.
    public var maxRetryAfter: Duration = .seconds(600)
    /// On SIGTERM, in-flight jobs get this long to finish before they are aborted and put
    /// back in the queue without consuming an attempt. Default 30 s.
    public var shutdownGracePeriod: Duration = .seconds(30)
    /// On SIGTERM, how much longer than the grace period the worker keeps trying to write the
    /// outcomes of finished jobs while the database does not answer. After that it exits
    /// without them (logged at error level with their job ids): those jobs stay `running` until
    /// their leases expire and then run again (at-least-once), so no job is lost, only the
    /// results of those calls. A shutdown therefore ends within `shutdownGracePeriod +
    /// shutdownWriteTimeout` whatever the database does (40 s by default, inside the 45 s the
    /// deploy/ orchestrators wait before SIGKILL). Default 10 s.
    public var shutdownWriteTimeout: Duration = .seconds(10)
    /// Finished jobs older than this are pruned (by one elected worker). Default 7 days.
    public var retention: Duration = .seconds(7 * 86_400)
    /// Dead jobs and their dead letters are kept this long. Default 30 days.
    public var deadRetention: Duration = .seconds(30 * 86_400)
    /// How often the elected worker prunes. Default 60 s.
    public var pruneInterval: Duration = .seconds(60)
    /// Rows of dead worker processes are deleted after this long without a heartbeat. Default 5 min.
    public var workerExpiry: Duration = .seconds(300)

    public init() {}

    /// Checks the values; the error names the field and the rule.
    public func validate() throws(WorkerError) {
        func positive(_ name: String, _ value: Duration) throws(WorkerError) {
            if value <= .zero { throw WorkerError(.invalidConfiguration, "\(name) must be positive") }
        }
        if concurrency < 1 || concurrency > 100_000 {
            throw WorkerError(.invalidConfiguration, "concurrency must be from 1 to 100000 (got \(concurrency))")
        }
        if lanes.isEmpty { throw WorkerError(.invalidConfiguration, "lanes must name at least one lane") }
        if let interactiveReserve, interactiveReserve < 0 || interactiveReserve >= concurrency {
            throw WorkerError(.invalidConfiguration, "interactiveReserve must be from 0 to concurrency - 1 (got \(interactiveReserve))")
        }
        if maxClaimBatch < 1 { throw WorkerError(.invalidConfiguration, "maxClaimBatch must be at least 1") }
        if claimAhead < 0 || claimAhead > 100_000 {
            throw WorkerError(.invalidConfiguration, "claimAhead must be from 0 to 100000 (got \(claimAhead))")
        }
        if claimTenantWindow < 1 { throw WorkerError(.invalidConfiguration, "claimTenantWindow must be at least 1") }
        if completionBatch < 1 { throw WorkerError(.invalidConfiguration, "completionBatch must be at least 1") }
        try positive("completionInterval", completionInterval)
        try positive("lease", lease)
        try positive("heartbeatInterval", heartbeatInterval)
        try positive("timeoutResolution", timeoutResolution)
        try positive("claimWindow", claimWindow)
        if let schedulingLagTarget { try positive("schedulingLagTarget", schedulingLagTarget) }
        try positive("rescueInterval", rescueInterval)
        try positive("pollInterval", pollInterval)
        try positive("retryBase", retryBase)
        try positive("retryCap", retryCap)
        try positive("retention", retention)
        try positive("shutdownWriteTimeout", shutdownWriteTimeout)
        try positive("deadRetention", deadRetention)
        try positive("pruneInterval", pruneInterval)
        if heartbeatInterval >= lease {
            throw WorkerError(.invalidConfiguration, "heartbeatInterval (\(heartbeatInterval)) must be shorter than lease (\(lease))")
        }
    }
}
