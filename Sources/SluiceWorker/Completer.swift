import Foundation
import Logging
import Sluice
import SluicePostgres

/// Writes attempt outcomes in groups (group commit): one `sluice.finish_attempts` statement per
/// `completionBatch` outcomes or per `completionInterval`, whichever comes first. Each
/// statement updates the jobs, results, attempts, dead letters and usage of its group in one
/// transaction, guarded by lease owner and attempt.
actor Completer {
    private let postgres: PostgresClient
    private let workerID: String
    private let batchSize: Int
    private let interval: Duration
    private let logger: Logger
    private var buffer: [AttemptOutcome] = []
    private var flushing = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    /// Outcomes the database refused because the lease had moved on (stale worker).
    private(set) var refused = 0
    private(set) var written = 0

    init(postgres: PostgresClient, workerID: String, batchSize: Int, interval: Duration, logger: Logger) {
        self.postgres = postgres
        self.workerID = workerID
        self.batchSize = batchSize
        self.interval = interval
        self.logger = logger
    }

    /// Queues an outcome; returns at once. A full group is flushed right away.
    func submit(_ outcome: AttemptOutcome) {
        buffer.append(outcome)
        if buffer.count >= batchSize, !flushing {
            Task { await self.flush() }
        }
    }

    var pending: Int { buffer.count }

    /// Runs until cancelled, flushing every `interval`; flushes what is left on the way out.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            await flush()
        }
        await drain()
    }

    /// Flushes until the buffer is empty (retrying while the database is unreachable).
    func drain() async {
        var delay: Duration = .milliseconds(50)
        while !buffer.isEmpty || flushing {
            if flushing {
                await withCheckedContinuation { waiters.append($0) }
                continue
            }
            if await !flush() {
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Writes one group. Returns false when the write failed (the outcomes stay queued).
    @discardableResult
    func flush() async -> Bool {
        guard !flushing, !buffer.isEmpty else { return true }
        flushing = true
        defer {
            flushing = false
            let resumed = waiters
            waiters.removeAll()
            for waiter in resumed { waiter.resume() }
        }
        let group = Array(buffer.prefix(batchSize))
        var json = JSONWriter(capacity: group.count * 512)
        json.beginArray()
        for outcome in group { outcome.write(to: &json) }
        json.endArray()
        do {
            let result = try await postgres.query(
                "SELECT sluice.finish_attempts($1, $2::jsonb)", [workerID, PostgresJSON(bytes: json.bytes)])
            buffer.removeFirst(group.count)
            written += result.rows.count
            let stale = group.count - result.rows.count
            if stale > 0 {
                refused += stale
                logger.info("outcomes refused: the job's lease moved on", metadata: ["count": "\(stale)"])
            }
            if buffer.count >= batchSize {
                Task { await self.flush() }
            }
            return true
        } catch {
            logger.warning("writing outcomes failed; will retry", metadata: ["error": "\(error)", "pending": "\(buffer.count)"])
            return false
        }
    }
}
