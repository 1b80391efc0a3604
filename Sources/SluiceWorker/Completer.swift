import Foundation
import Logging
import Metrics
import Sluice
import SluicePostgres
import Tracing

/// Writes attempt outcomes in groups (group commit): one `sluice.finish_attempts` statement per
/// `completionBatch` outcomes or per `completionInterval`, whichever comes first, with up to
/// `maxConcurrentWrites` statements in flight. Each statement updates the jobs, results,
/// attempts, dead letters and usage of its group in one transaction, guarded by lease owner
/// and attempt. With `notifyDoneAfterCommit` (the default) the group's `sluice_done`
/// notification is sent after its commit, by a second, asynchronously committed statement
/// (``JobStore/notifyDone(_:)``): PostgreSQL serialises the commits of notifying transactions
/// through their WAL flush, so a notification inside the synchronous completion made every
/// enqueue wake-up wait for the completions' fsyncs. A waiter cannot miss the job: it LISTENs
/// and registers before it reads the job, and the notification follows the commit; if this
/// process dies between the two, the waiter's periodic re-read finds the job finished.
///
/// ``submit(_:)`` returns at once (the job's slot frees for the next claim) unless more than
/// `4 × completionBatch` outcomes wait to be written; then it returns once its outcome is
/// written, so a slow or unreachable database slows claiming instead of piling up outcomes.
/// The worker's heartbeat renews the leases of jobs whose outcomes are not written yet
/// (``unrecordedJobIDs``), so they are never rescued while their outcome waits here.
actor Completer {
    private struct Pending {
        let outcome: AttemptOutcome
        var done: CheckedContinuation<Void, Never>?
        /// The outcome's `sluice.result_write` span, when tracing (ended once written).
        var span: (any Span)? = nil
    }

    private let store: JobStore
    private let workerID: String
    private let batchSize: Int
    private let interval: Duration
    private let maxConcurrentWrites: Int
    private let notifyDoneAfterCommit: Bool
    private let logger: Logger
    private let metrics: WorkerMetrics
    private let errors: DatabaseErrorMonitor
    private var buffer: [Pending] = []
    private var writing = 0
    /// Jobs whose outcomes are being written now.
    private var writingIDs: Set<UUID> = []
    private var failures = 0
    /// Set by ``abandon()``: the worker is stopping and the database did not take the outcomes
    /// in time; nothing waits for a write any more.
    private var abandoned = false

    init(store: JobStore, workerID: String, batchSize: Int, interval: Duration,
         maxConcurrentWrites: Int = 2, notifyDoneAfterCommit: Bool = true, metrics: WorkerMetrics, logger: Logger, errors: DatabaseErrorMonitor) {
        self.metrics = metrics
        self.store = store
        self.workerID = workerID
        self.batchSize = batchSize
        self.interval = interval
        self.maxConcurrentWrites = maxConcurrentWrites
        self.notifyDoneAfterCommit = notifyDoneAfterCommit
        self.logger = logger
        self.errors = errors
    }

    /// Queues an outcome; a full group is written right away. Returns at once, or, while the
    /// queue is over its high-water mark, once this outcome is written (or refused as stale).
    func submit(_ outcome: AttemptOutcome, span: (any Span)? = nil) async {
        if buffer.count < 4 * batchSize {
            buffer.append(Pending(outcome: outcome, done: nil, span: span))
            if buffer.count >= batchSize, failures == 0 { startWrite() }
            return
        }
        if abandoned {
            buffer.append(Pending(outcome: outcome, done: nil, span: span))
            return
        }
        await withCheckedContinuation { continuation in
            buffer.append(Pending(outcome: outcome, done: continuation, span: span))
            if failures == 0 { startWrite() }
        }
    }

    /// Jobs whose outcomes are queued or being written (their leases must stay renewed).
    func unrecordedJobIDs() -> [UUID] {
        buffer.map(\.outcome.jobID) + writingIDs
    }

    /// Runs until cancelled, writing what is queued every `interval`; writes what is left on
    /// the way out.
    func run() async {
        while !Task.isCancelled {
            // After failed writes, back off: interval × 2^failures, at most × 256.
            try? await Task.sleep(for: interval * (1 << min(failures, 8)))
            startWrite()
        }
        await drain()
    }

    /// Writes until nothing is queued or in flight, retrying while the database is unreachable,
    /// until ``abandon()`` is called. Returns the jobs whose outcomes were not written.
    @discardableResult
    func drain() async -> [UUID] {
        var delay: Duration = .milliseconds(50)
        while (!buffer.isEmpty || writing > 0) && !abandoned {
            if writing == 0 {
                if await !write() {
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(2))
                }
            } else {
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        return unrecordedJobIDs()
    }

    /// Stops waiting for the database (a stopping worker whose write timeout passed): submitters
    /// held by the high-water mark return, and ``drain()`` returns what is left unwritten.
    func abandon() {
        abandoned = true
        for i in buffer.indices {
            buffer[i].done?.resume()
            buffer[i].done = nil
        }
    }

    private func startWrite() {
        guard writing < maxConcurrentWrites, !buffer.isEmpty else { return }
        Task { await self.write() }
    }

    /// Tells waiters about jobs whose terminal transitions committed (see the type's notes). A
    /// failure is logged and not retried: the waiters' periodic re-read covers it.
    private func notifyDone(_ ids: [UUID]) async {
        do {
            try await store.notifyDone(ids)
        } catch {
            errors.record(error, "notifying waiters of finished jobs failed; they will re-read", operation: "notifyDone",
                          metadata: ["jobs": "\(ids.count)"])
        }
    }

    /// Writes one group. Returns false when the write failed (the outcomes stay queued).
    @discardableResult
    private func write() async -> Bool {
        guard writing < maxConcurrentWrites, !buffer.isEmpty else { return true }
        writing += 1
        let group = Array(buffer.prefix(batchSize))
        buffer.removeFirst(group.count)
        for item in group { writingIDs.insert(item.outcome.jobID) }
        defer { for item in group { writingIDs.remove(item.outcome.jobID) } }
        do {
            let outcomes = group.map(\.outcome)
            let deferrals = outcomes.filter { $0.kind == .deferred }.map {
                JobStore.Deferral(jobID: $0.jobID, attempt: $0.attempt, runAt: $0.retryAt ?? Date(), reason: $0.reason ?? "waiting",
                                  lane: $0.demoteLane, route: $0.demoteRoute)
            }
            let finished = outcomes.filter { $0.kind != .deferred }
            var recorded = try await store.deferJobs(worker: workerID, deferrals)
            var terminal: [UUID] = []
            if !finished.isEmpty {
                let start = ContinuousClock.now
                let applied = try await store.finishAttempts(worker: workerID, outcomes: finished,
                                                             notifyDone: !notifyDoneAfterCommit)
                metrics.finishDuration.record(duration: ContinuousClock.now - start)
                recorded += applied.count
                if notifyDoneAfterCommit, !applied.isEmpty {
                    let finishedIDs = Set(finished.lazy.filter { $0.kind != .retry }.map(\.jobID))
                    terminal = applied.filter { finishedIDs.contains($0) }
                }
            }
            writing -= 1
            failures = 0
            let stale = group.count - recorded
            if stale > 0 {
                logger.info("outcomes refused: the job's lease moved on", metadata: ["count": "\(stale)"])
            }
            for item in group {
                JobTracing.endResultWrite(item.span, groupSize: group.count, refused: stale)
                item.done?.resume()
            }
            if buffer.count >= batchSize { startWrite() }
            if !terminal.isEmpty { await notifyDone(terminal) }
            return true
        } catch {
            writing -= 1
            failures += 1
            // Back at the front, in order; run() retries with backoff.
            buffer.insert(contentsOf: group, at: 0)
            if abandoned { abandon() }
            errors.record(error, "writing outcomes failed; will retry", operation: "finishAttempts",
                          metadata: ["pending": "\(buffer.count)"])
            return false
        }
    }
}
