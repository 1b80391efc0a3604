public import Foundation
public import Logging
public import ServiceLifecycle
public import SluicePostgres
import SluiceJSON

/// The submitter API: enqueue jobs, read their state and results, wait for them, cancel them.
///
/// A `ServiceLifecycle.Service` that owns a PostgreSQL connection pool. It works as soon as
/// it is created; `run()` keeps it alive until graceful shutdown and then closes the pool.
///
/// ```swift
/// let client = try SluiceClient(configuration: .init(databaseURL: url), logger: logger)
/// let job = try await client.enqueue(JobSpec(tenant: "acme", provider: "openai", model: "gpt-4o-mini",
///                                            request: JSONDocument(#"{"messages":[{"role":"user","content":"Hi"}]}"#)))
/// let done = try await client.wait(for: job.id, timeout: .seconds(60))
/// ```
public final class SluiceClient: Service, Sendable {
    /// How to reach PostgreSQL.
    public struct Configuration: Sendable {
        /// The database (from `SLUICE_DATABASE_URL` in the CLI).
        public var database: PostgresConfiguration
        /// Pool size and acquire timeout. Default: 10 connections, 10 s.
        public var pool: PostgresClient.Configuration
        /// ``SluiceClient/wait(for:timeout:)`` is woken by the `sluice_done` notification; as a
        /// safety net for a notification that never came (the finishing process died between
        /// its commit and its notification, or a listener reconnect), a waiter also re-reads its
        /// job after this long without one, then after twice as long, up to 16 times this.
        /// Default 2 s.
        public var waitRecheck: Duration = .seconds(2)

        public init(database: PostgresConfiguration, pool: PostgresClient.Configuration = .init()) {
            self.database = database
            self.pool = pool
        }

        /// - Throws: `PostgresError` with code `invalidURL` when the URL does not parse.
        public init(databaseURL: String, pool: PostgresClient.Configuration = .init()) throws {
            self.init(database: try PostgresConfiguration(url: databaseURL), pool: pool)
        }
    }

    /// The pool, shared with callers that want their own statements or transactions.
    public let postgres: PostgresClient
    /// The typed statements of the `sluice` schema, on the same pool.
    public let store: JobStore
    let logger: Logger
    let waiter: JobWaiter
    let notifier: LaneNotifier
    let coalescer: EnqueueCoalescer
    let waitRecheck: Duration

    /// Creates a client with its own pool.
    public convenience init(configuration: Configuration, logger: Logger) {
        self.init(postgres: PostgresClient(configuration: configuration.database, pool: configuration.pool, logger: logger),
                  logger: logger, waitRecheck: configuration.waitRecheck)
    }

    /// Creates a client on an existing pool (which the caller runs and shuts down).
    /// - Parameter waitRecheck: see ``Configuration/waitRecheck`` (at least 100 ms; shorter
    ///   values are raised to it).
    public init(postgres: PostgresClient, logger: Logger, waitRecheck: Duration = .seconds(2)) {
        self.waitRecheck = max(waitRecheck, .milliseconds(100))
        self.postgres = postgres
        self.store = JobStore(postgres: postgres)
        self.logger = logger
        self.waiter = JobWaiter(postgres: postgres, logger: logger)
        self.notifier = LaneNotifier(store: store, logger: logger)
        self.coalescer = EnqueueCoalescer(store: store, notifier: notifier)
    }

    public func run() async throws {
        try await gracefulShutdown()
        await shutdown()
    }

    /// Stops waiters and closes the pool.
    public func shutdown() async {
        await waiter.shutdown()
        await postgres.shutdown()
    }

    // MARK: Enqueue

    /// Enqueues one job. The same tenant and idempotency key always yield the same job, also
    /// under concurrent callers (`created` tells which call made it).
    ///
    /// Concurrent calls share commits: while enqueues are running, jobs that other tasks enqueue
    /// meanwhile are written together in the next transaction (each commit costs a WAL flush).
    /// Each call still succeeds or fails on its own spec alone, and returns once its job is
    /// committed.
    /// - Throws: ``SluiceError`` naming the field and rule (`invalidSpec`), or `queueFull`,
    ///   `tenantPaused`, `budgetExhausted`, `notPermitted`, `database`. Nothing is written on error.
    public func enqueue(_ spec: JobSpec) async throws(SluiceError) -> EnqueuedJob {
        try await coalescer.submit(spec).get()
    }

    /// Enqueues up to `settings.max_batch_size` (default 10,000) jobs in one statement, all or
    /// nothing. Invalid specs are reported together in ``SluiceError/batchErrors`` by index.
    /// - Returns: one entry per spec, in order.
    public func enqueue(batch specs: [JobSpec]) async throws(SluiceError) -> [EnqueuedJob] {
        try await Self.enqueue(specs, store: store, notifier: notifier)
    }

    /// One batch in one transaction on a pooled connection, then the workers woken.
    static func enqueue(_ specs: [JobSpec], store: JobStore, notifier: LaneNotifier) async throws(SluiceError) -> [EnqueuedJob] {
        let payload = try Self.payload(specs)
        let jobs: [EnqueuedJob] = try await JobStore.run("enqueue") {
            try await store.postgres.withConnection { conn in
                try await JobStore.enqueue(specs: payload, count: specs.count, notify: false, on: conn)
            }
        }
        // Committed: wake the workers (coalesced across concurrent callers).
        let lanes = Set(zip(specs, jobs).compactMap { spec, job in
            job.created && (spec.runAt.map { $0 <= Date() } ?? true) ? spec.lane.rawValue : nil
        })
        if !lanes.isEmpty { await notifier.notify(lanes) }
        return jobs
    }

    /// Enqueues inside the caller's own open transaction on its own connection: the jobs exist
    /// if and only if the caller commits.
    public static func enqueue(_ specs: [JobSpec], in connection: PostgresConnection) async throws(SluiceError) -> [EnqueuedJob] {
        let payload = try payload(specs)
        // The caller commits: notify inside its transaction so workers wake exactly then.
        return try await JobStore.enqueue(specs: payload, count: specs.count, notify: true, on: connection)
    }

    /// Enqueues one job inside the caller's transaction (see ``enqueue(_:in:)-(_,PostgresConnection)``).
    public static func enqueue(_ spec: JobSpec, in connection: PostgresConnection) async throws(SluiceError) -> EnqueuedJob {
        try await enqueue([spec], in: connection)[0]
    }

    static func payload(_ specs: [JobSpec]) throws(SluiceError) -> PostgresJSON {
        guard !specs.isEmpty else {
            throw SluiceError.invalid("jobs", "non_empty", "a batch needs at least one job")
        }
        var problems: [SluiceError.SpecProblem] = []
        var json = JSONWriter(capacity: specs.count * 256)
        json.beginArray()
        for (index, spec) in specs.enumerated() {
            do {
                try spec.checkDocuments()
            } catch {
                problems.append(.init(index: index, field: error.field ?? "spec", rule: error.rule ?? "invalid",
                                      message: error.message))
            }
            spec.write(to: &json)
        }
        json.endArray()
        if let first = problems.first {
            let message = specs.count == 1 ? first.message
                : "job \(first.index): \(first.message) (\(problems.count) invalid jobs in the batch)"
            throw SluiceError(code: .invalidSpec, message: message, field: first.field, rule: first.rule,
                              batchErrors: problems)
        }
        return PostgresJSON(bytes: json.bytes)
    }

    // MARK: Read

    /// The job, or nil when it does not exist (or is not visible to this role).
    public func job(_ id: UUID) async throws(SluiceError) -> Job? {
        try await store.job(id)
    }

    /// The result of a succeeded job, or nil.
    public func result(_ id: UUID) async throws(SluiceError) -> JobResult? {
        try await store.result(id)
    }

    /// A page of a tenant's jobs, newest first. Pass the last id of a page as `after` to get
    /// the next page (keyset pagination: stable under concurrent inserts).
    public func list(tenant: String, state: JobState? = nil, lane: Lane? = nil, limit: Int = 100,
                     after: UUID? = nil) async throws(SluiceError) -> [Job] {
        guard (1...10_000).contains(limit) else {
            throw SluiceError.invalid("limit", "range", "limit must be from 1 to 10000")
        }
        return try await store.jobs(tenant: tenant, state: state, lane: lane, limit: limit, after: after)
    }

    // MARK: Wait and cancel

    /// Waits until the job reaches a terminal state (succeeded, dead or cancelled) and returns
    /// it. Woken by LISTEN/NOTIFY within milliseconds; without a notification it re-reads the
    /// job after ``Configuration/waitRecheck`` (2 s, backing off to 16×), which only matters
    /// when a notification was lost (the finishing process died right after its commit).
    /// - Throws: `timeout` when the deadline passes first; `notFound` for an unknown job.
    public func wait(for id: UUID, timeout: Duration) async throws(SluiceError) -> Job {
        let deadline = ContinuousClock.now + timeout
        do {
            try await waiter.ensureListening()
        } catch {
            throw SluiceError.from(error)
        }
        var recheck = waitRecheck
        while true {
            let version = await waiter.register(id)
            let job: Job?
            do {
                job = try await self.job(id)
            } catch {
                await waiter.unregister(id)
                throw error
            }
            guard let job else {
                await waiter.unregister(id)
                throw SluiceError(code: .notFound, message: "job \(id) not found", field: "id", rule: "exists")
            }
            if job.state.isTerminal {
                await waiter.unregister(id)
                return job
            }
            if ContinuousClock.now >= deadline || Task.isCancelled {
                await waiter.unregister(id)
                throw SluiceError(code: .timeout, message: "job \(id) is still \(job.state.rawValue) after \(timeout)")
            }
            // Woken by the job's notification; else re-read after `recheck` (a lost notification).
            let now = ContinuousClock.now
            await waiter.waitForChange(id, after: version, until: min(deadline, now + recheck))
            recheck = min(recheck * 2, waitRecheck * 16)
            await waiter.unregister(id)
        }
    }

    /// Cancels a job: a queued job is cancelled at once; a running job's worker is told to
    /// abort its call and ends it `cancelled`; a finished job is left alone.
    /// - Returns: the job's state right after the request.
    @discardableResult
    public func cancel(_ id: UUID) async throws(SluiceError) -> JobState {
        try await store.cancel(id)
    }
}
