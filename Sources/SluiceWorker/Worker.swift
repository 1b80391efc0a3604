import Foundation
public import Logging
public import ServiceLifecycle
public import Sluice
public import SluicePostgres
import Metrics
import SluiceSupport

/// One worker process's engine: claims jobs in batches sized to its free slots, runs them
/// against their providers, renews their leases, rescues jobs of dead workers, and records
/// outcomes in groups. A `ServiceLifecycle.Service`: on graceful shutdown it stops claiming,
/// lets in-flight jobs finish within the grace period, then puts the rest back in the queue
/// without consuming an attempt.
public final class Worker: Service, Sendable {
    public let id: String
    let configuration: WorkerConfiguration
    let postgres: PostgresClient
    let store: JobStore
    let providers: @Sendable (String) -> (any LLMProvider)?
    let logger: Logger
    let retry: RetryPolicy
    let running = Locked<[UUID: (attempt: Int, control: JobControl)]>([:])
    /// Jobs claimed ahead of free slots (``WorkerConfiguration/claimAhead``), in start order.
    /// They are in `running` too from their claim on (heartbeats renew them, cancels find them).
    /// Lock order: `ahead`, then `running`.
    let ahead = Locked<[Job]>([])
    let wakeup = Wakeup()
    let draining = Locked(false)
    let completer: Completer
    /// Rate limits, budgets and kill switches (nil: every claimed job starts).
    public let admission: Admission?
    /// The process's metrics (swift-metrics; no-ops unless the application bootstrapped a backend).
    let metrics: WorkerMetrics
    let databaseErrors: DatabaseErrorMonitor
    /// The routes route jobs run through (read from `sluice.routes`, again after a change).
    let routes: RouteBook
    /// Limits ordinary jobs while the process's scheduling lag is high (CPU headroom).
    let governor: LoadGovernor

    /// - Parameters:
    ///   - providers: looks a provider up by the name jobs use (`echo`, `openai`, …).
    ///   - admission: decides whether each claimed job may start (rate limits, budgets, kill
    ///     switches); nil starts every claimed job.
    ///
    /// Bootstrap a tracer (`InstrumentationSystem.bootstrap`) before creating the worker: whether
    /// one is there is looked at here, not on every job.
    public init(configuration: WorkerConfiguration, postgres: PostgresClient,
                providers: @escaping @Sendable (String) -> (any LLMProvider)?, logger: Logger, id: String? = nil,
                admission: Admission? = nil) throws(WorkerError) {
        try configuration.validate()
        JobTracing.refresh()
        self.configuration = configuration
        self.postgres = postgres
        self.store = JobStore(postgres: postgres)
        self.providers = providers
        self.admission = admission
        let workerID = id ?? Self.processID(token: UUID().uuidString.prefix(8).lowercased())
        self.id = workerID
        var logger = logger
        logger[metadataKey: "worker"] = "\(workerID)"
        self.logger = logger
        self.metrics = WorkerMetrics()
        self.retry = RetryPolicy(base: configuration.retryBase, cap: configuration.retryCap,
                                 maxRetryAfter: configuration.maxRetryAfter)
        self.databaseErrors = DatabaseErrorMonitor(logger: logger)
        self.routes = RouteBook(store: store, logger: logger)
        self.governor = LoadGovernor(.init(
            lagTarget: configuration.schedulingLagTarget,
            maximum: configuration.concurrency - configuration.effectiveInteractiveReserve,
            minimum: max(1, configuration.concurrency / 8)))
        self.completer = Completer(store: store, workerID: workerID, batchSize: configuration.completionBatch,
                                   interval: configuration.completionInterval,
                                   notifyDoneAfterCommit: configuration.notifyDoneAfterCommit, metrics: metrics, logger: logger, errors: databaseErrors)
    }

    /// The id of the worker in process `pid` on this host started with `token`:
    /// `host:pid:token`. A supervisor that gives its child a token (`sluice worker --child
    /// --worker-token T`) knows the child's id from the pid it spawned, so it can rescue that
    /// child's jobs the moment it dies (`JobStore.rescueWorker`).
    public static func processID(token: some StringProtocol, pid: Int32? = nil) -> String {
        "\(ProcessInfo.processInfo.hostName):\(pid ?? getpid()):\(token)"
    }

    /// Jobs this process holds now: running, and claimed ahead of a free slot.
    public var inFlight: Int { running.withLock { $0.count } }

    /// Jobs whose call runs (or is about to) in this process: held jobs less those claimed ahead.
    var executing: Int { ahead.withLock { executing(besides: $0) } }

    /// ``executing``, given the jobs held ahead (call it under the `ahead` lock).
    private func executing(besides ahead: [Job]) -> Int { running.withLock { $0.count } - ahead.count }

    /// The next job claimed ahead, if an ordinary slot is free for it (checked and taken in one
    /// step, so two finishing tasks never start two jobs for one slot); nil once draining.
    func takeAhead() -> Job? {
        guard !draining.current else { return nil }
        return ahead.withLock { ahead -> Job? in
            guard !ahead.isEmpty, ordinaryFree(inFlight: executing(besides: ahead)) > 0 else { return nil }
            return ahead.removeFirst()
        }
    }

    /// Whether graceful shutdown began: no more claims, in-flight jobs finishing (`/readyz`
    /// answers not ready).
    public var isDraining: Bool { draining.current }

    /// Database errors this worker met that are not those of an unreachable or restarting
    /// database (a deadlock `40P01`, a constraint or internal error, …), by SQLSTATE. Each was
    /// also logged at error level; the loop that met it carried on. Normally empty.
    public var unexpectedDatabaseErrors: [String: Int] { databaseErrors.unexpected }

    /// Free slots ordinary (non-privileged) jobs may take: up to concurrency − reserve, or
    /// fewer while the load governor limits them.
    func ordinaryFree(inFlight: Int) -> Int {
        min(configuration.concurrency - configuration.effectiveInteractiveReserve, governor.limit) - inFlight
    }

    /// Free slots in all: the ordinary ones plus the interactive reserve.
    func totalFree(inFlight: Int) -> Int {
        min(configuration.concurrency, governor.limit + configuration.effectiveInteractiveReserve) - inFlight
    }

    /// Free slots that make a claim worthwhile without waiting: an eighth of the slots (at
    /// least 1, at most maxClaimBatch).
    var claimThreshold: Int { max(1, min(configuration.maxClaimBatch, configuration.concurrency / 8)) }

    public func run() async throws {
        try await admission?.checkAtStart()
        try await register()
        metrics.slotsGauge.record(configuration.concurrency)
        metrics.ordinaryLimitGauge.record(governor.limit)
        metrics.runningGauge.record(0)
        metrics.drainingGauge.record(0)
        logger.info("worker started", metadata: [
            "concurrency": "\(configuration.concurrency)",
            "lanes": "\(configuration.lanes.map(\.rawValue).joined(separator: ","))",
        ])
        await withDiscardingTaskGroup { background in
            background.addTask { await self.completer.run() }
            background.addTask { await self.listenLoop() }
            background.addTask { await self.heartbeatLoop() }
            background.addTask { await self.rescueLoop() }
            background.addTask { await self.pruneLoop() }
            background.addTask { await self.deadlineLoop() }
            background.addTask {
                await self.governor.run(ordinaryRunning: { self.executing }) { limit, lag in
                    self.metrics.ordinaryLimitGauge.record(limit)
                    self.logger.debug("load governor", metadata: ["ordinary_limit": "\(limit)", "lag_ms": "\(lag)"])
                }
            }
            if let admission = self.admission {
                background.addTask { await admission.run() }
            }
            background.addTask { await self.writeDeadline() }

            await withGracefulShutdownHandler {
                await self.claimLoop()
            } onGracefulShutdown: {
                self.draining.withLock { $0 = true }
                self.metrics.drainingGauge.record(1)
                Task { await self.wakeup.signal() }
            }
            // In-flight jobs are done (or released); write what is left and stop the helpers.
            let unwritten = await self.completer.drain()
            if !unwritten.isEmpty {
                self.logger.error("stopping with outcomes the database did not take: these jobs run again once their leases expire", metadata: [
                    "jobs": "\(unwritten.count)", "first_jobs": "\(unwritten.prefix(20).map { $0.uuidString.lowercased() }.joined(separator: ","))",
                    "shutdown_write_timeout": "\(self.configuration.shutdownWriteTimeout)",
                ])
            }
            // What this worker's capacity leases did not use goes back to the shared buckets.
            await self.admission?.returnLeases(all: true)
            background.cancelAll()
        }
        await deregister()
        logger.info("worker stopped")
    }

    /// Once the worker is stopping, gives the database `shutdownGracePeriod +
    /// shutdownWriteTimeout` to take the outcomes of finished jobs, then abandons them (see
    /// ``WorkerConfiguration/shutdownWriteTimeout``), so a shutdown ends even when the database
    /// never answers again. Cancelled when the worker stops first.
    private func writeDeadline() async {
        do {
            try await untilDraining()
            try await Task.sleep(for: configuration.shutdownGracePeriod + configuration.shutdownWriteTimeout)
        } catch { return }
        await completer.abandon()
    }

    /// Returns once graceful shutdown has begun (checked every 50 ms); throws when cancelled.
    private func untilDraining() async throws {
        while !draining.current { try await Task.sleep(for: .milliseconds(50)) }
    }

    // MARK: Claiming and running

    private func claimLoop() async {
        // Once draining, in-flight jobs get the grace period; then the rest are aborted (and
        // released back to the queue). Cancelled when every job finished in time.
        let shutdownWatcher = Task { [configuration] in
            do {
                try await self.untilDraining()
                try await Task.sleep(for: configuration.shutdownGracePeriod)
            } catch { return }
            for control in self.running.withLock({ $0.values.map(\.control) }) { control.abort(.shutdown) }
        }
        defer { shutdownWatcher.cancel() }
        await withDiscardingTaskGroup { jobs in
            var pollDelay = configuration.pollInterval
            // Runs `job` in a task of its own; when it ends, the same task runs the next job
            // claimed ahead while an ordinary slot is free for it.
            func start(_ job: Job) {
                jobs.addTask {
                    var next: Job? = job
                    while let job = next {
                        await self.runClaimed(job)
                        next = self.takeAhead()
                    }
                    // Wake the claim loop once enough slots are free for a worthwhile claim (not
                    // for every finished job: see claimWindow).
                    if self.claimRoom().ordinary >= self.claimThreshold {
                        await self.wakeup.signal()
                    }
                }
            }
            while !draining.current {
                // Jobs claimed ahead whose slot freed while no task was left to start them.
                while let job = takeAhead() { start(job) }
                let room = claimRoom()
                var claimedAny = false
                if let admission, await !admission.readyToClaim() {
                    // The limiter's Redis is unreachable: fail closed, probe again shortly.
                    await wakeup.wait(timeout: admission.configuration.unavailableRetry)
                    continue
                }
                if room.total > 0 {
                    let want = min(room.total, configuration.maxClaimBatch)
                    // Ordinary jobs may fill at most concurrency − reserve slots (plus claimAhead
                    // held ahead); the rest of this claim is reserved for privileged jobs:
                    // interactive ones and those of light tenants (see sluice.claim).
                    let reserved = want - min(want, max(0, room.ordinary))
                    do {
                        let claimed = Self.startOrder(try await claim(want, reserved: reserved))
                        pollDelay = configuration.pollInterval
                        let (now, later) = split(claimed)
                        let held = running.withLock { running -> Int in
                            for job in claimed { running[job.id] = (job.attempt, JobControl(timeout: job.timeout)) }
                            return running.count
                        }
                        metrics.runningGauge.record(held)
                        for job in now { start(job) }
                        if !later.isEmpty {
                            ahead.withLock { $0.append(contentsOf: later) }
                            // A slot that freed meanwhile, whose task found nothing ahead.
                            while let job = takeAhead() { start(job) }
                        }
                        claimedAny = !claimed.isEmpty
                    } catch {
                        databaseErrors.record(error, "claim failed", operation: "claim")
                        pollDelay = min(pollDelay * 2, .seconds(10))
                    }
                }
                if claimedAny {
                    // More work is likely while claims return jobs: claim again at once if enough
                    // slots are free, else within claimWindow (sooner on a NOTIFY or when enough
                    // slots free up). Under a backlog this keeps claims few and large, so the claim
                    // lock is often free when an interactive job's NOTIFY arrives.
                    if claimRoom().ordinary >= claimThreshold { continue }
                    await wakeup.wait(timeout: configuration.claimWindow)
                } else {
                    // Sleep until NOTIFY, enough freed slots, or the jittered poll.
                    await wakeup.wait(timeout: pollDelay * Double.random(in: 0.8...1.2))
                }
            }
            // Draining: jobs held ahead will not start here (takeAhead answers nil now); they go
            // back to the queue at once, without using an attempt, while running ones finish.
            let unstarted = ahead.withLock { ahead -> [Job] in
                defer { ahead.removeAll() }
                return ahead
            }
            for job in unstarted {
                running.withLock { _ = $0.removeValue(forKey: job.id) }
                await release(job)
            }
        }
    }

    /// Which of a claim's jobs (in start order) start now and which wait ahead. Ordinary slots
    /// go to the first jobs; a reserved slot only to a privileged one (interactive, or of a
    /// tenant light in this claim). Without claiming ahead every job starts: the claim took no
    /// more than the free slots, and only privileged jobs into reserved ones.
    func split(_ claimed: [Job]) -> (now: [Job], later: [Job]) {
        guard configuration.claimAhead > 0 else { return (claimed, []) }
        let executing = self.executing
        var ordinary = max(0, ordinaryFree(inFlight: executing))
        var reserved = max(0, totalFree(inFlight: executing) - ordinary)
        var perTenant: [String: Int] = [:]
        for job in claimed { perTenant[job.tenant, default: 0] += 1 }
        var now: [Job] = []
        var later: [Job] = []
        for job in claimed {
            if ordinary > 0 {
                ordinary -= 1
                now.append(job)
            } else if reserved > 0,
                      job.lane == .interactive || perTenant[job.tenant, default: 0] <= configuration.effectiveInteractiveReserve {
                reserved -= 1
                now.append(job)
            } else {
                later.append(job)
            }
        }
        return (now, later)
    }

    /// How many jobs a claim may take now: free slots plus what may be held ahead, less what is
    /// held ahead already (`ordinary`: of those, how many ordinary jobs may take).
    func claimRoom() -> (total: Int, ordinary: Int) {
        ahead.withLock { ahead in
            let executing = executing(besides: ahead)
            let extra = configuration.claimAhead - ahead.count
            return (totalFree(inFlight: executing) + extra, ordinaryFree(inFlight: executing) + extra)
        }
    }

    /// Runs one claimed job (registered in `running`) to its outcome, and forgets it.
    private func runClaimed(_ job: Job) async {
        guard let control = running.withLock({ $0[job.id]?.control }) else { return }
        await JobTracing.withJobSpan(job) {
            if let outcome = await self.admitAndExecute(job, control: control) {
                await self.completer.submit(outcome, span: JobTracing.startResultWrite(outcome))
            }
        }
        let left = running.withLock { running -> Int in
            running.removeValue(forKey: job.id)
            return running.count
        }
        metrics.runningGauge.record(left)
        if control.reason == .shutdown {
            await release(job)
        }
    }

    /// The order in which a claim's jobs get their tasks: interactive jobs first, then the jobs
    /// of tenants with the fewest jobs in this claim (a quiet tenant's one job before a
    /// backlogged tenant's hundreds), each group in claim order. Tasks start in the order they
    /// are created, so a light job claimed beside 500 others no longer waits for their starts.
    static func startOrder(_ jobs: [Job]) -> [Job] {
        guard jobs.count > 1 else { return jobs }
        var perTenant: [String: Int] = [:]
        for job in jobs { perTenant[job.tenant, default: 0] += 1 }
        guard perTenant.count > 1 || jobs.contains(where: { $0.lane == .interactive }) else { return jobs }
        // Keys computed once, indices sorted (not the jobs, with two lookups per comparison).
        let keys = jobs.map { ($0.lane == .interactive ? 0 : 1) << 32 | (perTenant[$0.tenant] ?? 0) }
        return jobs.indices.sorted { (keys[$0], $0) < (keys[$1], $1) }.map { jobs[$0] }
    }

    private func claim(_ limit: Int, reserved: Int) async throws -> [Job] {
        let start = ContinuousClock.now
        let jobs = try await store.claim(.init(
            worker: id, limit: limit, lanes: configuration.lanes, tenants: configuration.tenants,
            lease: configuration.lease, starvationAfter: configuration.starvationAfter, reserved: reserved,
            tenantWindow: configuration.claimTenantWindow, skipTenants: admission?.skipTenants ?? [],
            skipModels: admission?.skipModels ?? []))
        metrics.claimDuration.record(duration: ContinuousClock.now - start)
        if !jobs.isEmpty { metrics.claimBatchSize.record(jobs.count) }
        for job in jobs {
            metrics.job(job).claimed.increment()
            // Both timestamps are the database's clock: started_at is set by the claim.
            if let startedAt = job.startedAt {
                metrics.pickup(job.lane).recordSeconds(max(0, startedAt.timeIntervalSince(job.runAt)))
            }
        }
        return jobs
    }

    /// Admission (when configured), then the attempt, then settlement of what it reserved.
    func admitAndExecute(_ job: Job, control: JobControl) async -> AttemptOutcome? {
        if let admission, let demotion = await admission.demotion(for: job) {
            // The tenant reached a soft budget: back to the queue (no attempt used) in the lower
            // lane and/or through the cheaper route, runnable at once.
            var outcome = AttemptOutcome(jobID: job.id, attempt: job.attempt, kind: .deferred, startedAt: Date(), duration: .zero)
            outcome.retryAt = Date()
            outcome.demoteLane = demotion.lane
            outcome.demoteRoute = demotion.route
            outcome.reason = "soft budget reached: demoted" + (demotion.lane.map { " to lane \($0.rawValue)" } ?? "")
                + (demotion.route.map { " to route \($0)" } ?? "")
            if demotion.lane != nil { metrics.budgetDemotion(to: "lane").increment() }
            if demotion.route != nil { metrics.budgetDemotion(to: "route").increment() }
            logger.info("job demoted: its tenant reached a soft budget", metadata: [
                "job_id": "\(job.id)", "tenant": "\(job.tenant)", "lane": "\(demotion.lane?.rawValue ?? job.lane.rawValue)",
                "route": "\(demotion.route ?? job.route ?? "-")",
            ])
            return outcome
        }
        if let route = job.route { return await executeRoute(job, route: route, control: control) }
        guard let admission else { return await execute(job, control: control) }
        let decision = await JobTracing.admission { () -> (Admission.Verdict, outcome: String) in
            let decision = await admission.admit(job)
            if case .wait(_, let limit) = decision { return (decision, "wait:" + limit) }
            return (decision, "start")
        }
        switch decision {
        case .wait(let deferral, let limit):
            metrics.rateLimitWait(provider: job.provider, model: job.model, limit: limit).increment()
            var outcome = AttemptOutcome(jobID: job.id, attempt: job.attempt, kind: .deferred, startedAt: Date(), duration: .zero)
            outcome.retryAt = deferral.runAt
            outcome.reason = deferral.reason
            logger.debug("job waits", metadata: ["job": "\(job.id)", "reason": "\(deferral.reason)"])
            return outcome
        case .start(let ticket):
            let outcome = await execute(job, control: control, keyID: ticket?.keyID)
            await admission.finish(ticket, provider: job.provider, model: job.model, succeeded: outcome?.kind == .succeeded,
                                   errorClass: outcome?.kind == .succeeded ? nil : outcome?.errorClass, usage: outcome?.usage,
                                   costUSD: outcome?.costUSD, retryAfter: outcome?.retryAfter,
                                   rateLimits: outcome?.rateLimits ?? outcome?.result?.rateLimits)
            return outcome
        }
    }

    /// Runs one attempt and decides what happens next. Returns nil when the worker no longer
    /// owns the job (lease lost) or it goes back to the queue (shutdown).
    func execute(_ job: Job, control: JobControl, keyID: String? = nil) async -> AttemptOutcome? {
        let outcome = await attempt(job, control: control, keyID: keyID)
        if let outcome { record(outcome, of: job) }
        return outcome
    }

    /// Counts the attempt's outcome and logs retries, dead letters and cancellations with the
    /// job's id, tenant and attempt (the error text redacted; never the prompt or output).
    func record(_ outcome: AttemptOutcome, of job: Job) {
        let handles = metrics.job(job)
        // Metadata is an autoclosure argument: built only when the level is enabled (not for
        // every succeeded job at the default level).
        switch outcome.kind {
        case .succeeded:
            handles.succeeded.increment()
            logger.debug("job succeeded", metadata: Self.logMetadata(job, outcome))
        case .retry:
            handles.retried.increment()
            logger.info("attempt failed; job will be retried", metadata: Self.logMetadata(job, outcome))
        case .dead:
            handles.dead.increment()
            logger.warning("job dead-lettered", metadata: Self.logMetadata(job, outcome))
        case .cancelled:
            handles.cancelled.increment()
            logger.info("job cancelled while running", metadata: Self.logMetadata(job, outcome))
        case .deferred:
            break  // not an attempt: admission put the job back (admitAndExecute)
        }
    }

    /// `job_id`, `tenant`, `attempt`, lane, provider, model and what went wrong (free text redacted).
    static func logMetadata(_ job: Job, _ outcome: AttemptOutcome) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "job_id": "\(job.id)", "tenant": "\(job.tenant)", "attempt": "\(job.attempt)", "lane": "\(job.lane.rawValue)",
            "provider": "\(job.provider)", "model": "\(job.model)",
        ]
        if let errorClass = outcome.errorClass { metadata["error_class"] = "\(errorClass.rawValue)" }
        if let message = outcome.errorMessage { metadata["error"] = "\(LogRedaction.redact(message))" }
        if let reason = outcome.reason { metadata["reason"] = "\(LogRedaction.redact(reason))" }
        if let retryAt = outcome.retryAt { metadata["retry_in_ms"] = "\(max(0, Int(retryAt.timeIntervalSinceNow * 1000)))" }
        return metadata
    }

    /// - Parameter keyID: the API key admission took for this call (a key pool), nil to let the
    ///   provider pick.
    func attempt(_ job: Job, control: JobControl, keyID: String? = nil) async -> AttemptOutcome? {
        let startedAt = Date()
        let clock = ContinuousClock()
        let start = clock.now
        var outcome = AttemptOutcome(jobID: job.id, attempt: job.attempt, kind: .dead, startedAt: startedAt, duration: .zero)
        outcome.target = RouteTarget(provider: job.provider, model: job.model)

        guard let provider = providers(job.provider) else {
            outcome.kind = .dead
            outcome.errorClass = .notFound
            outcome.errorMessage = "no provider named \(job.provider) is configured on this worker"
            outcome.reason = "provider not configured"
            return outcome
        }
        let call = ProviderCall(
            jobID: job.id, tenant: job.tenant, provider: job.provider, model: job.model, request: job.request.bytes,
            maxOutputTokens: job.maxOutputTokens, stream: job.stream, metadata: job.metadata.bytes,
            traceparent: job.traceparent, attempt: job.attempt, route: job.route, keyID: keyID)

        let callMetrics = metrics.call(provider: job.provider, model: job.model)
        let inFlightCalls = metrics.inFlight(provider: job.provider)
        inFlightCalls.increment()
        var result = await control.run { () -> Result<ProviderResult, ProviderFailure> in
            do {
                return .success(try await JobTracing.providerCall(call) { try await provider.call($0) })
            } catch let failure as ProviderFailure {
                return .failure(failure)
            } catch is CancellationError {
                return .failure(ProviderFailure(.cancelled, "the call was cancelled"))
            } catch {
                return .failure(ProviderFailure(.internal, "provider error: \(error)"))
            }
        }
        outcome.duration = clock.now - start
        inFlightCalls.decrement()
        callMetrics.latency.record(duration: outcome.duration)

        if let reason = control.reason {
            switch reason {
            case .leaseLost, .shutdown:
                return nil
            case .cancelRequested:
                outcome.kind = .cancelled
                outcome.errorClass = .cancelled
                outcome.errorMessage = "cancelled by request while running"
                return outcome
            case .timeout:
                result = .failure(ProviderFailure(.timeout, "the attempt exceeded the job's timeout of \(job.timeout)"))
            }
        } else if Task.isCancelled {
            // The worker task itself was cancelled without an abort reason: treat as shutdown.
            return nil
        }
        switch result {
        case .success(let value):
            metrics.record(usage: value.usage, cost: value.costUSD, handles: callMetrics)
            if let ttft = value.timeToFirstToken { callMetrics.ttft.record(duration: ttft) }
            outcome.kind = .succeeded
            outcome.usage = value.usage
            outcome.costUSD = value.costUSD
            outcome.httpStatus = value.httpStatus
            outcome.result = value
        case .failure(let failure):
            outcome.errorClass = failure.errorClass
            outcome.errorMessage = failure.message
            outcome.httpStatus = failure.httpStatus
            outcome.usage = failure.usage
            outcome.costUSD = failure.costUSD
            outcome.retryAfter = failure.retryAfter
            outcome.rateLimits = failure.rateLimits
            metrics.record(usage: failure.usage, cost: failure.costUSD, handles: callMetrics)
            metrics.error(provider: job.provider, model: job.model, errorClass: failure.errorClass).increment()
            if failure.httpStatus == 429 { callMetrics.rateLimited.increment() }
            if failure.isRetryable && job.attempt < job.maxAttempts {
                outcome.kind = .retry
                let delay = retry.delay(afterAttempt: job.attempt, retryAfter: failure.retryAfter)
                if let retryAfter = failure.retryAfter, retryAfter > .zero {
                    callMetrics.retryAfter.increment(by: delay.milliseconds / 1000)
                }
                outcome.retryAt = Date().addingTimeInterval(delay.milliseconds / 1000)
                outcome.retryDelay = delay
            } else {
                outcome.kind = .dead
                outcome.reason = failure.isRetryable
                    ? "attempts exhausted (\(job.attempt) of \(job.maxAttempts))"
                    : "\(failure.errorClass.rawValue) is not retryable"
            }
        }
        return outcome
    }

    /// Puts a job this worker still owns back in the queue without consuming an attempt.
    private func release(_ job: Job) async {
        do {
            try await store.release(worker: id, jobs: [(job.id, job.attempt)])
        } catch {
            databaseErrors.record(error, "releasing a job failed; its lease will expire", operation: "release",
                                  metadata: ["job": "\(job.id)"])
        }
    }

    // MARK: Background loops

    private func listenLoop() async {
        // The stream reconnects by itself and yields .reconnected; it ends when this task is cancelled.
        for await event in postgres.listen([StoreNames.jobsChannel, StoreNames.cancelChannel, StoreNames.limitsChannel]) {
            switch event {
            case .notification(let note) where note.channel == StoreNames.limitsChannel:
                admission?.invalidate()
                routes.invalidate()
                await wakeup.signal()
            case .notification(let note) where note.channel == StoreNames.cancelChannel:
                if let jobID = UUID(uuidString: note.payload),
                   let control = running.withLock({ $0[jobID]?.control }) {
                    control.abort(.cancelRequested)
                }
            case .reconnected:
                admission?.invalidate()
                routes.invalidate()
                await wakeup.signal()
            case .notification:
                await wakeup.signal()
            }
        }
    }

    /// Aborts attempts past their job's timeout. One sweep every `timeoutResolution` for the
    /// whole process instead of a timer per job (job timeouts are at least 1 s).
    private func deadlineLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.timeoutResolution)
            let now = ContinuousClock.now
            let late = running.withLock { $0.values.map(\.control) }.filter { $0.deadline.map { $0 <= now } ?? false }
            for control in late { control.abort(.timeout) }
        }
    }

    private func heartbeatLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.heartbeatInterval)
            if Task.isCancelled { break }
            await heartbeat()
        }
    }

    /// Renews this worker's leases and registry row; aborts attempts whose job was rescued
    /// elsewhere or that a submitter cancelled.
    func heartbeat() async {
        // Running jobs (with the attempt each is at now), and finished ones whose outcomes are
        // still queued for writing.
        let attempts = running.withLock { $0.mapValues(\.attempt) }
        let ids = Array(attempts.keys) + (await completer.unrecordedJobIDs())
        do {
            try await store.workerHeartbeat(id: id)
            guard !ids.isEmpty else { return }
            for renewal in try await store.renewLeases(worker: id, jobs: ids, lease: configuration.lease) {
                let jobID = renewal.jobID
                guard let entry = running.withLock({ $0[jobID] }) else { continue }
                if !renewal.owned {
                    // Only the attempt this heartbeat asked about lost its lease. The job may
                    // have been retried and claimed again by this worker meanwhile (the answer
                    // then describes the queued moment in between): leave the new attempt alone.
                    if attempts[jobID] == entry.attempt { entry.control.abort(.leaseLost) }
                } else if renewal.cancelRequested {
                    entry.control.abort(.cancelRequested)
                }
            }
        } catch {
            databaseErrors.record(error, "heartbeat failed", operation: "heartbeat")
        }
    }

    private func rescueLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.rescueInterval * Double.random(in: 0.8...1.2))
            if Task.isCancelled { break }
            do {
                // Paced cluster-wide: with many processes, one sweep per half interval in all.
                let rescued = try await store.rescueExpired(limit: 1000, every: configuration.rescueInterval / 2)
                if rescued > 0 {
                    metrics.rescued.increment(by: rescued)
                    logger.notice("rescued jobs with expired leases", metadata: ["count": "\(rescued)"])
                }
                try await store.removeSilentWorkers(silentFor: configuration.workerExpiry)
            } catch {
                databaseErrors.record(error, "rescue failed", operation: "rescue")
            }
        }
    }

    private func pruneLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.pruneInterval * Double.random(in: 0.9...1.1))
            if Task.isCancelled { break }
            do {
                try await prune()
            } catch {
                databaseErrors.record(error, "pruning failed", operation: "prune")
            }
            do {
                // Queued jobs whose tenant is missing from the fair queue would never be claimed.
                let added = try await store.repairFairQueue()
                if added > 0 {
                    logger.error("queued jobs were missing from the fair queue; registered them", metadata: ["tenant_lanes": "\(added)"])
                }
            } catch {
                databaseErrors.record(error, "fair queue repair failed", operation: "fairRepair")
            }
        }
    }

    /// Prunes one round if this worker wins the election (a transaction-level advisory lock,
    /// so exactly one worker prunes at a time and a crashed pruner frees it at once). Each
    /// batch is its own short transaction so pruning never holds back vacuum or blocks claims.
    @discardableResult
    public func prune(batch: Int = 1000) async throws -> Int {
        var total = 0
        while true {
            guard let deleted = try await store.pruneBatch(
                retention: configuration.retention, deadRetention: configuration.deadRetention, limit: batch)
            else { return total }
            total += deleted
            if deleted < batch { return total }
        }
    }

    private func register() async throws {
        do {
            try await store.registerWorker(id: id, host: ProcessInfo.processInfo.hostName, pid: Int(getpid()),
                                           lanes: configuration.lanes, concurrency: configuration.concurrency)
        } catch {
            throw WorkerError(.database, "registering the worker failed: \(error)", underlying: error)
        }
    }

    private func deregister() async {
        try? await store.deregisterWorker(id: id)
    }
}
