public import Foundation
public import Logging
public import Sluice
import SluiceSupport
import SluiceRedis

/// Decides, for each claimed job, whether it may start now: kill switches, the Redis token
/// buckets of its provider/model and tenant, provider cooldowns and hard budgets, all taken in
/// one atomic script call (``RateLimiter``). A job that may not start yet goes back to the
/// queue without consuming an attempt, runnable at the time the bucket will have refilled
/// (``JobStore/Deferral``); a tenant whose hard budget is spent is held, so the claim skips it.
///
/// To avoid claim churn, the worker remembers which buckets are empty until when: later jobs
/// of the same bucket are put back without asking Redis, spaced by what each will take, and
/// tenants with an empty bucket are left out of the next claims (``skipTenants``).
///
/// Fail closed: when Redis is unreachable, jobs that need a bucket do not start and claims
/// pause (``readyToClaim()`` probes Redis until it answers); settlements of calls that finished meanwhile are kept in
/// memory and applied when Redis answers again.
public final class Admission: Sendable {
    /// What the worker does with a claimed job.
    public enum Verdict: Sendable {
        /// Start it; settle the ticket when the call ends (nil: no bucket was taken).
        case start(Ticket?)
        /// Put it back without starting it; `limit` names what holds it (a label of
        /// `sluice_rate_limit_waits_total`: rpm, tpm, itpm, otpm, cooldown, window, breaker,
        /// budget, paused, unpriced, unavailable).
        case wait(JobStore.Deferral, limit: String)
    }

    /// A taken reservation, settled after the call.
    public struct Ticket: Sendable {
        let request: RateLimiter.Request
        let provider: String
        let model: String
        let modelBuckets: [RateLimiter.Bucket]
        let cooldownKey: String
        let breakerKey: String
        /// The breaker has failures on record or this start is its probe: record a success.
        let recordSuccess: Bool
        /// This start is the half-open breaker's probe: a call that neither succeeds nor fails
        /// in a way the breaker counts gives the probe back (``finish``).
        var probe = false
        /// The API key of the model's key pool this start took (its configured id, never the
        /// secret); the call must use it. Nil without a pool (the provider picks its key).
        public let keyID: String?
        /// Taken from this worker's capacity leases (``LeaseBook``): settled locally, no
        /// reservation in Redis.
        public internal(set) var leased = false
        /// The start's token envelope (estimated input + output limit).
        var envelopeTokens: Int = 0
        /// Whether buckets or budgets were taken (then the call is settled).
        var reserved: Bool { !request.buckets.isEmpty || !request.budgets.isEmpty }
    }

    private struct State {
        var snapshot: LimitsSnapshot?
        /// The snapshot's lookup tables, built once per refresh (not once per admission).
        var indexed: LimitsSnapshot.Index?
        var fetchedAt: ContinuousClock.Instant?
        var stale = true
        /// Bumped by ``invalidate()``: a read that started before it does not make the cache fresh.
        var limitsVersion = 0
        /// The read of the limits in flight, shared by every admission that needs it meanwhile
        /// (with hundreds of slots, an expired cache was read once per starting job).
        var read: (id: Int, version: Int, task: Task<LimitsSnapshot?, Never>)?
        var reads = 0
        /// Bucket or cooldown key → when the next job may try it.
        var nextTry: [String: Date] = [:]
        /// Bucket or cooldown key → why it is empty (the reason jobs waiting for it show).
        var blockReason: [String: String] = [:]
        /// Tenant → until when it is left out of claims.
        var skip: [String: Date] = [:]
        var pausedUntil: ContinuousClock.Instant?
        /// Redis failed and has not answered since (logged once per outage).
        var limiterDown = false
        var unsettled: [(RateLimiter.Request, RateLimiter.SettledUsage)] = []
        var softWarned: Set<String> = []
        /// Provider/model → until when the claim leaves it out (a cooldown, an open breaker,
        /// an empty model bucket).
        var skipModels: [String: Date] = [:]
        /// Cap key → the advertised limit last written (nil: removed) and when.
        var advertised: [String: (limit: Int?, at: ContinuousClock.Instant)] = [:]
        /// The model gate: provider/model → until when its starts that need no bucket are
        /// made without asking Redis (its shared state was clear, ``LimiterScripts/gate``).
        var clearUntil: [String: ContinuousClock.Instant] = [:]
        /// Provider/model → until when the gate is not asked again (it was not clear).
        var gateRefusedUntil: [String: ContinuousClock.Instant] = [:]
        /// Provider/models whose gate is being asked (other starts go per start meanwhile).
        var gateAsking: Set<String> = []
        /// Provider/model → events received for it; a gate answer read before the last event
        /// is not used.
        var events: [String: Int] = [:]
        /// Subscribed to the limiter's events channel (``RateLimiter/eventsChannel``); the
        /// model gate is used only while this is true.
        var subscribed = false
        /// Bumped whenever the subscription starts or ends (messages may have been lost).
        var generation = 0
    }

    let configuration: AdmissionConfiguration
    let limiter: RateLimiter?
    let store: JobStore
    let cost: @Sendable (String, String, Usage) -> Double?
    let logger: Logger
    private let state = Locked(State())
    /// This worker's capacity leases (nil: leasing off).
    let leases: LeaseBook?

    /// - Parameters:
    ///   - limiter: the shared buckets; nil when this worker has no Redis (then jobs that need
    ///     a bucket do not start: fail closed).
    ///   - cost: the price of a usage for provider/model, nil when the model has no price.
    public init(configuration: AdmissionConfiguration, limiter: RateLimiter?, store: JobStore,
                cost: @escaping @Sendable (String, String, Usage) -> Double?, logger: Logger) throws(WorkerError) {
        try configuration.validate()
        self.configuration = configuration
        self.limiter = limiter
        self.store = store
        self.cost = cost
        self.logger = logger
        leases = configuration.leasing.enabled
            ? LeaseBook(configuration: configuration.leasing, laneReserve: Array(configuration.laneReserve.values)) : nil
    }

    /// Limits changed (`NOTIFY sluice_limits`): read them again before the next admission.
    public func invalidate() {
        state.withLock { s in
            s.stale = true
            s.limitsVersion += 1
            // A raised limit or a resumed model applies at once, not after the waits learnt
            // under the old limits.
            s.nextTry = [:]
            s.blockReason = [:]
            s.skip = [:]
            s.skipModels = [:]
        }
        leases?.dropAll()
        state.withLock { $0.clearUntil = [:] }
    }

    /// A provider/model's shared state turned against starting it (a cooldown, a breaker
    /// failure, a provider window falling low — here or in another worker, through the events
    /// channel): its gate closes and its leases end, so its next starts are decided by the
    /// admission script, which sees why.
    func modelEvent(_ modelName: String) {
        state.withLock { s in
            s.events[modelName, default: 0] += 1
            s.clearUntil[modelName] = nil
            s.gateRefusedUntil[modelName] = nil
        }
        guard let leases, let limiter else { return }
        leases.drop(["rpm", "tpm", "itpm", "otpm"].map { limiter.key("rl", "m:" + modelName, $0) })
    }

    /// Whether this worker is subscribed to the limiter's events (then the model gate is used).
    public var subscribedToEvents: Bool { state.withLock { $0.subscribed } }

    /// Listens on the limiter's events channel until cancelled (part of ``run()``).
    func listenForEvents() async {
        guard let limiter, leases != nil else { return }
        for await event in limiter.redis.subscribe(to: [limiter.eventsChannel]) {
            switch event {
            case .subscribed:
                // Events published while not subscribed are lost: leases taken before go back
                // (the next ones are granted only if the model is clear).
                state.withLock { s in
                    s.subscribed = true
                    s.generation += 1
                    s.clearUntil = [:]
                }
                leases?.dropAll()
            case .disconnected(let why):
                let was = state.withLock { s -> Bool in
                    defer {
                        s.subscribed = false
                        s.generation += 1
                        s.clearUntil = [:]
                    }
                    return s.subscribed
                }
                if was { logger.notice("limiter events unavailable: every start of a model without limits asks Redis", metadata: ["error": "\(why)"]) }
            case .message(_, let payload):
                modelEvent(payload)
            }
        }
    }

    /// Provider/models (`provider/model`) the next claim should leave out: a cooldown or an
    /// open breaker is in force, or the model's bucket is empty, for a while yet.
    public var skipModels: [String] {
        guard configuration.skipLimitedModels else { return [] }
        let now = Date()
        return state.withLock { state in
            state.skipModels = state.skipModels.filter { $0.value > now }
            return Array(state.skipModels.keys)
        }
    }

    /// Leaves a provider/model out of claims until `until` (at most a minute ahead: a longer
    /// wait is looked at again).
    private func skipModel(_ modelName: String, until: Date) {
        let until = min(until, Date().addingTimeInterval(60))
        state.withLock { s in s.skipModels[modelName] = max(s.skipModels[modelName] ?? until, until) }
    }

    /// Tenants the next claim should leave out (their bucket is empty for a while yet).
    public var skipTenants: [String] {
        let now = Date()
        return state.withLock { state in
            state.skip = state.skip.filter { $0.value > now }
            return Array(state.skip.keys)
        }
    }

    /// Whether the worker may claim now. While the limiter's Redis is unreachable (or limits
    /// need a Redis this worker does not have) the answer is no; every `unavailableRetry` Redis
    /// is probed, and claims resume once it answers — no job is claimed just to be put back.
    public func readyToClaim() async -> Bool {
        let (down, paused) = state.withLock { s in (s.limiterDown, s.pausedUntil.map { $0 > .now } ?? false) }
        if paused { return false }
        guard down else { return true }
        guard let limiter else {
            // No Redis at all: look again after the pause (the limits may have been removed).
            state.withLock { $0.limiterDown = false }
            return true
        }
        do {
            _ = try await limiter.serverTime()
        } catch {
            state.withLock { $0.pausedUntil = .now + configuration.unavailableRetry }
            return false
        }
        state.withLock { s in
            s.limiterDown = false
            s.pausedUntil = nil
        }
        logger.notice("rate limiter's Redis answers again: claims resume")
        await flushUnsettled()
        return true
    }

    /// Notes that Redis failed: claims pause; logged once per outage.
    private func limiterFailed(_ error: any Error, _ what: String) {
        let first = state.withLock { s -> Bool in
            defer {
                s.limiterDown = true
                s.pausedUntil = .now + configuration.unavailableRetry
            }
            s.clearUntil = [:]
            return !s.limiterDown
        }
        leases?.dropAll()
        if first {
            logger.warning("rate limiter's Redis is unreachable: no starts that need it until it answers", metadata: [
                "error": "\(error)", "during": "\(what)",
            ])
        }
    }

    /// Capacity this worker holds in live leases, per bucket key (``LeaseBook``).
    public var leasedCapacity: [String: Double] { leases?.held ?? [:] }

    /// Settlements waiting for Redis.
    public var unsettledCount: Int { state.withLock { $0.unsettled.count } }

    /// The limits in force (cached; read again after a change or `snapshotMaxAge`). Callers
    /// that find the cache stale while a read is in flight wait for that read instead of
    /// starting their own (single flight), unless the limits changed since it started.
    /// - Parameter maxAge: how old a cached snapshot may be (default `snapshotMaxAge`).
    public func limits(maxAge: Duration? = nil) async -> LimitsSnapshot {
        let maxAge = maxAge ?? configuration.snapshotMaxAge
        enum Source { case cache(LimitsSnapshot), read(Task<LimitsSnapshot?, Never>, last: LimitsSnapshot?) }
        let source = state.withLock { s -> Source in
            let fresh = !s.stale && (s.fetchedAt.map { ContinuousClock.now - $0 < maxAge } ?? false)
            if fresh, let snapshot = s.snapshot { return .cache(snapshot) }
            if let read = s.read, read.version == s.limitsVersion { return .read(read.task, last: s.snapshot) }
            s.reads += 1
            let id = s.reads, version = s.limitsVersion
            let task = Task { await self.readLimits(id: id, version: version) }
            s.read = (id, version, task)
            return .read(task, last: s.snapshot)
        }
        switch source {
        case .cache(let snapshot): return snapshot
        case .read(let task, let last): return await task.value ?? last ?? LimitsSnapshot(models: configuration.fileLimits)
        }
    }

    /// Reads the limits from the database for ``limits(maxAge:)``; nil when that fails. The
    /// cache becomes fresh only if the limits did not change while the read was in flight.
    private func readLimits(id: Int, version: Int) async -> LimitsSnapshot? {
        var snapshot: LimitsSnapshot?
        do {
            snapshot = try await store.limitsSnapshot()
            snapshot?.addFileLimits(configuration.fileLimits)
        } catch {
            logger.warning("reading limits failed; using the last ones", metadata: ["error": "\(error)"])
        }
        let indexed = snapshot?.indexed()
        state.withLock { s in
            if s.read?.id == id { s.read = nil }
            // A read that started before a change is kept only when there is nothing else
            // (it may also have finished after a newer one).
            guard let snapshot, let indexed, s.limitsVersion == version || s.snapshot == nil else { return }
            s.snapshot = snapshot
            s.indexed = indexed
            s.fetchedAt = .now
            s.stale = s.limitsVersion != version
        }
        return snapshot
    }

    /// How many times this admission has read the limits from the database (reads shared by
    /// concurrent admissions count once).
    public var limitsReads: Int { state.withLock { $0.reads } }

    /// Refuses to start a worker that could not enforce the configured limits: limits exist but
    /// no Redis is configured, or Redis does not answer.
    public func checkAtStart() async throws(WorkerError) {
        let snapshot: LimitsSnapshot
        do {
            snapshot = try await store.limitsSnapshot()
        } catch {
            throw WorkerError(.database, "reading limits failed: \(error)", underlying: error)
        }
        let configured = snapshot.hasRateLimitsOrBudgets || configuration.fileLimits.contains(where: \.hasRateLimit)
        if let limiter {
            do {
                _ = try await limiter.serverTime()
            } catch {
                throw WorkerError(.limiter, "Redis at \(limiter.redis.configuration.host):\(limiter.redis.configuration.port) cannot be reached (\(error)); rate limits and budgets need it: check --redis-url / SLUICE_REDIS_URL", underlying: error)
            }
        } else if configured {
            throw WorkerError(.invalidConfiguration, "rate limits or budgets are configured (sluice limits show) but no Redis is: pass --redis-url or set SLUICE_REDIS_URL")
        }
    }

    /// A demotion for `job` when its tenant has reached a soft budget (recorded spend, as of the
    /// last read of the limits) and configured one: a lower lane (`tenants.soft_lane`) and/or a
    /// cheaper route (`tenants.soft_route`). Nil when nothing changes.
    public func demotion(for job: Job) async -> (lane: Lane?, route: String?)? {
        let snapshot = await limits()
        let index = state.withLock { $0.indexed } ?? snapshot.indexed()
        guard let t = index.tenants[job.tenant], t.softLane != nil || t.softRoute != nil, t.softBudgetReached else { return nil }
        let lane = t.softLane.flatMap { $0 > job.lane ? $0 : nil }
        let route = t.softRoute.flatMap { $0 != job.route ? $0 : nil }
        guard lane != nil || route != nil else { return nil }
        if state.withLock({ $0.softWarned.insert("\(job.tenant) demotion").inserted }) {
            logger.warning("soft budget reached: demoting the tenant's jobs", metadata: [
                "tenant": "\(job.tenant)", "lane": "\(t.softLane?.rawValue ?? "-")", "route": "\(t.softRoute ?? "-")",
            ])
        }
        return (lane, route)
    }

    /// Decides whether `job` may start now, taking its reservation if so.
    public func admit(_ job: Job) async -> Verdict {
        var snapshot = await limits()
        var index = state.withLock { $0.indexed } ?? snapshot.indexed()
        let modelName = "\(job.provider)/\(job.model)"
        if index.models[modelName]?.paused == true {
            // `sluice models resume` commits the resume and wakes the model's waiting jobs in
            // one transaction; this worker may claim them before its listener has marked the
            // cached limits stale. Read them again (at most every 250 ms) before putting a job
            // back for a whole pausedRetry.
            snapshot = await limits(maxAge: .milliseconds(250))
            index = state.withLock { $0.indexed } ?? snapshot.indexed()
        }
        let modelLimits = index.models[modelName]
        let tenantLimits = index.tenants[job.tenant]
        let poolLimits = index.pools[modelName] ?? []
        let now = Date()
        func wait(_ until: Date, _ reason: String, _ limit: String) -> Verdict {
            .wait(.init(jobID: job.id, attempt: job.attempt, runAt: until, reason: reason), limit: limit)
        }

        if modelLimits?.paused == true {
            // sluice.defer recognises this reason ('model % is paused (kill switch)') and makes
            // the job runnable at once if the model was resumed before the deferral is written.
            return wait(now.addingTimeInterval(configuration.pausedRetry.seconds), "model \(modelName) is paused (kill switch)", "paused")
        }
        guard modelLimits?.hasRateLimit == true || tenantLimits != nil || !poolLimits.isEmpty else {
            // No bucket to take, but a provider cooldown (a 429 seen by any worker) and the
            // model's circuit breaker still hold: one script call without a reservation.
            guard let limiter else { return .start(nil) }
            let tokens = max(job.estimatedInputTokens, 1) + (job.maxOutputTokens ?? configuration.defaultMaxOutputTokens)
            return await decide(job, limiter: limiter, modelName: modelName, modelBuckets: [], buckets: [], pool: [], budgets: [],
                                budgetLabels: [], envelopeTokens: tokens, now: now)
        }
        guard let limiter else {
            state.withLock { s in
                s.limiterDown = true
                s.pausedUntil = .now + configuration.unavailableRetry
            }
            return wait(now.addingTimeInterval(configuration.unavailableRetry.seconds),
                        "limits are configured but this worker has no Redis (SLUICE_REDIS_URL)", "unavailable")
        }

        // The envelope: estimated input plus the output limit.
        let input = max(job.estimatedInputTokens, 1)
        let output = job.maxOutputTokens ?? configuration.defaultMaxOutputTokens
        let envelope = Usage(inputTokens: input, outputTokens: output)
        let floor = configuration.laneReserve[job.lane] ?? 0
        func bucket(_ scope: String, _ kind: String, _ perMinute: Int, _ amount: Int, capped: Bool = false,
                    _ settle: @escaping @Sendable (RateLimiter.SettledUsage) -> Double) -> RateLimiter.Bucket {
            .init(key: limiter.key("rl", scope, kind), capacity: Double(perMinute), refillPerMillisecond: Double(perMinute) / 60_000,
                  amount: Double(amount), floorFraction: floor, capKey: capped ? limiter.key("cap", modelName, kind) : nil, settle: settle)
        }
        var modelBuckets: [RateLimiter.Bucket] = []
        if let m = modelLimits {
            let scope = "m:" + modelName
            // RPM and TPM are capped at the provider's advertised limits when those are lower
            // (``finish``: x-ratelimit-limit-*, anthropic-ratelimit-*-limit).
            if let rpm = m.rpm { modelBuckets.append(bucket(scope, "rpm", rpm, 1, capped: true) { _ in 1 }) }
            // A provider's TPM limit counts the requested max_tokens when the call starts (OpenAI
            // does), so its bucket keeps the reserved output: refunding the unused part let the next
            // window's burst exceed the provider's count (429s in the bench).
            if let tpm = m.tpm {
                modelBuckets.append(bucket(scope, "tpm", tpm, input + output, capped: true) { Double($0.inputTokens + output) })
            }
            if let itpm = m.inputTPM { modelBuckets.append(bucket(scope, "itpm", itpm, input) { Double($0.inputTokens) }) }
            if let otpm = m.outputTPM { modelBuckets.append(bucket(scope, "otpm", otpm, output) { Double($0.outputTokens) }) }
        }
        // An API-key pool: each key's own buckets; the script takes the key with the most room.
        let pool = poolLimits.compactMap { k -> RateLimiter.PoolKey? in
            guard let id = k.keyID else { return nil }
            let scope = "m:\(modelName):\(id)"
            var buckets: [RateLimiter.Bucket] = []
            if let rpm = k.rpm { buckets.append(bucket(scope, "rpm", rpm, 1) { _ in 1 }) }
            if let tpm = k.tpm { buckets.append(bucket(scope, "tpm", tpm, input + output) { Double($0.inputTokens + output) }) }
            if let itpm = k.inputTPM { buckets.append(bucket(scope, "itpm", itpm, input) { Double($0.inputTokens) }) }
            if let otpm = k.outputTPM { buckets.append(bucket(scope, "otpm", otpm, output) { Double($0.outputTokens) }) }
            return RateLimiter.PoolKey(id: id, cooldown: limiter.key("cool", modelName, id), buckets: buckets)
        }
        var tenantBuckets: [RateLimiter.Bucket] = []
        var budgets: [RateLimiter.Budget] = []
        var budgetLabels: [BudgetLabel] = []
        if let t = tenantLimits {
            let scope = "t:" + job.tenant
            if let rpm = t.rpm { tenantBuckets.append(bucket(scope, "rpm", rpm, 1) { _ in 1 }) }
            if let tpm = t.tpm { tenantBuckets.append(bucket(scope, "tpm", tpm, input + output) { Double($0.inputTokens + $0.outputTokens) }) }
            // The UTC day and month (Calendar arithmetic, several microseconds) only for a tenant
            // with a budget: computing them for every start of a rate-limited tenant cost a
            // tenth of a core at 6k starts a second.
            var windows: (day: BudgetWindow, month: BudgetWindow)?
            func add(_ daily: Bool, _ unit: String, _ limit: Double?, _ soft: Double?, _ amount: Double, _ recorded: Double) {
                guard let limit else { return }
                if windows == nil { windows = (BudgetWindow.day(containing: now), BudgetWindow.month(containing: now)) }
                let window = daily ? windows!.day : windows!.month
                budgets.append(.init(key: limiter.key("budget", job.tenant, window.name, unit), limit: limit, amount: amount,
                                     seed: recorded, ttlSeconds: Int(window.end.timeIntervalSince(now)) + 3600,
                                     countsTokens: unit == "tok"))
                let implied = t.softFraction.map { $0 * limit }
                budgetLabels.append(("\(window.kind) \(unit == "tok" ? "token" : "USD") budget of \(unit == "tok" ? Self.integer(limit) : "$" + Self.money(limit))",
                                     recorded, soft ?? implied, window))
            }
            let tokens = Double(input + output)
            add(true, "tok", t.dailyTokens.map(Double.init), t.dailyTokensSoft.map(Double.init), tokens, Double(t.spentDayTokens))
            add(false, "tok", t.monthlyTokens.map(Double.init), t.monthlyTokensSoft.map(Double.init), tokens, Double(t.spentMonthTokens))
            if t.hasUSDBudget {
                guard let price = cost(job.provider, job.model, envelope) else {
                    return wait(now.addingTimeInterval(configuration.unpricedRetry.seconds),
                                "model \(modelName) has no price and tenant \(job.tenant) has a USD budget: add a price for it", "unpriced")
                }
                add(true, "usd", t.dailyUSD, t.dailyUSDSoft, price, t.spentDayUSD)
                add(false, "usd", t.monthlyUSD, t.monthlyUSDSoft, price, t.spentMonthUSD)
            }
        }
        return await decide(job, limiter: limiter, modelName: modelName, modelBuckets: modelBuckets,
                            buckets: modelBuckets + tenantBuckets, pool: pool, budgets: budgets, budgetLabels: budgetLabels,
                            envelopeTokens: input + output, now: now)
    }

    private typealias BudgetLabel = (label: String, recorded: Double, soft: Double?, window: BudgetWindow)

    /// A start taken from this worker's capacity leases, renewing them in one script call when
    /// they ran short; nil when the start must be decided in Redis (``LeaseBook``). Jobs with
    /// a budget or a key pool are always decided in Redis.
    private func leased(_ leases: LeaseBook, limiter: RateLimiter, job: Job, modelName: String, modelBuckets: [RateLimiter.Bucket],
                        buckets: [RateLimiter.Bucket], envelopeTokens: Int) async -> Ticket? {
        let cooldownKey = limiter.key("cool", modelName)
        let breakerKey = limiter.key("brk", modelName)
        for _ in 0..<64 {
            switch leases.plan(buckets) {
            case .perJob:
                return nil
            case .wait(let key):
                await leases.waitForAnswer(key)
            case .taken:
                let request = RateLimiter.Request(reservation: "\(job.id.lowercasedText):\(job.attempt)", buckets: buckets,
                                                  cooldowns: [cooldownKey], budgets: [], reservationTTL: job.timeout + .seconds(600),
                                                  breaker: breakerKey, probeTimeout: job.timeout + .seconds(5))
                return Ticket(request: request, provider: job.provider, model: job.model, modelBuckets: modelBuckets,
                              cooldownKey: cooldownKey, breakerKey: breakerKey, recordSuccess: false, keyID: nil, leased: true,
                              envelopeTokens: envelopeTokens)
            case .renew(let items):
                // A model bucket's slice needs its cooldown, breaker and provider windows clear
                // (the admission script checks those per start). "Far from the provider's
                // limit": a window holds at least what the bucket keeps back, or 64 starts.
                var checks: RateLimiter.LeaseChecks?
                let modelKeys = Set(modelBuckets.map(\.key))
                if items.contains(where: { modelKeys.contains($0.bucket.key) }) {
                    checks = modelChecks(limiter: limiter, modelName: modelName, modelBuckets: modelBuckets, envelopeTokens: envelopeTokens)
                }
                do {
                    leases.complete(items, granted: try await limiter.lease(items, checks: checks))
                } catch {
                    leases.complete(items, granted: nil)
                    return nil
                }
            }
        }
        return nil
    }

    /// What the provider windows must hold for a model to count as far from the provider's
    /// limit (leases of its buckets, its gate): what its buckets keep back (the leasing floor of
    /// their size), at least 64 starts of this envelope.
    private func windowThresholds(modelBuckets: [RateLimiter.Bucket], envelopeTokens: Int) -> (requests: Double, tokens: Double) {
        let floor = leases?.floor ?? configuration.leasing.floorFraction
        let rpm = modelBuckets.first { $0.key.hasSuffix(":rpm") }
        let tpm = modelBuckets.first { $0.key.hasSuffix(":tpm") }
        return (max((rpm?.capacity ?? 0) * floor, 64), max((tpm?.capacity ?? 0) * floor, Double(envelopeTokens) * 64))
    }

    /// The checks of a model's shared state for a lease or its gate.
    private func modelChecks(limiter: RateLimiter, modelName: String, modelBuckets: [RateLimiter.Bucket],
                             envelopeTokens: Int) -> RateLimiter.LeaseChecks {
        let thresholds = windowThresholds(modelBuckets: modelBuckets, envelopeTokens: envelopeTokens)
        return .init(cooldown: limiter.key("cool", modelName), breaker: limiter.key("brk", modelName),
                     requestsWindow: (limiter.key("pw", modelName, "req"), thresholds.requests),
                     tokensWindow: (limiter.key("pw", modelName, "tok"), thresholds.tokens))
    }

    /// The model gate, for a start that takes no bucket: true when the model's shared state
    /// (cooldown, breaker, provider windows) was seen clear within the last lease duration and
    /// no event about it arrived since — then the start needs no Redis round trip. Asks Redis
    /// (``RateLimiter/gate(_:)``) at most once per lease duration per model; used only while
    /// this worker is subscribed to the limiter's events, which close the gate within
    /// milliseconds of a cooldown, a breaker failure or a provider window falling low in any
    /// worker. False: decide the start in Redis.
    private func gated(limiter: RateLimiter, modelName: String, envelopeTokens: Int) async -> Bool {
        enum Gate { case open, closed, ask(generation: Int, events: Int) }
        let now = ContinuousClock.now
        let gate = state.withLock { s -> Gate in
            guard s.subscribed else { return .closed }
            if let until = s.clearUntil[modelName], until > now { return .open }
            if let until = s.gateRefusedUntil[modelName], until > now { return .closed }
            guard s.gateAsking.insert(modelName).inserted else { return .closed }
            return .ask(generation: s.generation, events: s.events[modelName] ?? 0)
        }
        let ask: (generation: Int, events: Int)
        switch gate {
        case .open: return true
        case .closed: return false
        case .ask(let generation, let events): ask = (generation, events)
        }
        let clear: Bool
        do {
            clear = try await limiter.gate(modelChecks(limiter: limiter, modelName: modelName, modelBuckets: [], envelopeTokens: envelopeTokens))
        } catch {
            state.withLock { _ = $0.gateAsking.remove(modelName) }
            return false
        }
        let duration = configuration.leasing.duration
        return state.withLock { s -> Bool in
            s.gateAsking.remove(modelName)
            // An event (or a lost subscription) since the question makes the answer stale.
            guard s.subscribed, s.generation == ask.generation, (s.events[modelName] ?? 0) == ask.events else { return false }
            if clear { s.clearUntil[modelName] = .now + duration } else { s.gateRefusedUntil[modelName] = .now + duration }
            return clear
        }
    }

    /// Gives back what ended leases and settled leased starts left (every lease duration, and
    /// when the worker stops). Kept for the next call when Redis fails.
    public func returnLeases(all: Bool = false) async {
        guard let leases, let limiter else { return }
        if all { leases.dropAll() }
        let items = leases.sweep()
        guard !items.isEmpty else { return }
        do {
            leases.complete(items, granted: try await limiter.lease(items, checks: nil))
        } catch {
            leases.complete(items, granted: nil)
        }
    }

    /// Asks Redis (unless this worker already knows a cooldown or an open breaker says "not
    /// yet") and turns the answer into a verdict.
    private func decide(_ job: Job, limiter: RateLimiter, modelName: String, modelBuckets: [RateLimiter.Bucket],
                        buckets: [RateLimiter.Bucket], pool: [RateLimiter.PoolKey], budgets: [RateLimiter.Budget], budgetLabels: [BudgetLabel],
                        envelopeTokens: Int, now: Date) async -> Verdict {
        func wait(_ until: Date, _ reason: String, _ limit: String) -> Verdict {
            .wait(.init(jobID: job.id, attempt: job.attempt, runAt: until, reason: reason), limit: limit)
        }
        let cooldownKey = limiter.key("cool", modelName)
        let breakerKey = limiter.key("brk", modelName)

        // A cooldown or an open breaker known from an earlier answer: put back without asking
        // Redis. (An empty bucket is asked every time: it hands out a slot in its shared schedule.)
        let known = state.withLock { s -> (Date, String, String)? in
            var found: (Date, String, String)?
            for key in [cooldownKey, breakerKey] {
                if let next = s.nextTry[key], next > now, next > (found?.0 ?? .distantPast) {
                    let limit = key == cooldownKey ? "cooldown" : key == breakerKey ? "breaker" : String(key.split(separator: ":").last ?? "rate")
                    found = (next, s.blockReason[key] ?? "rate limit: waiting for \(modelName) or tenant \(job.tenant) capacity", limit)
                }
            }
            return found
        }
        if let (until, reason, limit) = known {
            return wait(until, reason, limit)
        }
        if leases != nil, buckets.isEmpty, budgets.isEmpty, pool.isEmpty,
           await gated(limiter: limiter, modelName: modelName, envelopeTokens: envelopeTokens) {
            return .start(nil)
        }
        if let leases, budgets.isEmpty, pool.isEmpty, !buckets.isEmpty,
           let ticket = await leased(leases, limiter: limiter, job: job, modelName: modelName, modelBuckets: modelBuckets,
                                     buckets: buckets, envelopeTokens: envelopeTokens) {
            return .start(ticket)
        }

        var request = RateLimiter.Request(reservation: "\(job.id.lowercasedText):\(job.attempt)", buckets: buckets,
                                          cooldowns: [cooldownKey], budgets: budgets,
                                          reservationTTL: job.timeout + .seconds(600), breaker: breakerKey,
                                          probeTimeout: job.timeout + .seconds(5))
        // What the provider's own headers said remains in its window (requests and tokens). With
        // a key pool the headers describe one key's window, so the pool's buckets and per-key
        // cooldowns stand in for them.
        if pool.isEmpty {
            request.windows = [(limiter.key("pw", modelName, "req"), 1), (limiter.key("pw", modelName, "tok"), Double(envelopeTokens))]
        }
        request.pool = pool
        let decision: RateLimiter.Decision
        do {
            decision = try await limiter.admit(request)
            if unsettledCount > 0 { await flushUnsettled() }
        } catch {
            if buckets.isEmpty && budgets.isEmpty && pool.isEmpty {
                // Nothing to over-admit without a bucket: an unreadable cooldown or breaker does
                // not stop the call.
                return .start(nil)
            }
            limiterFailed(error, "admission")
            return wait(now.addingTimeInterval(configuration.unavailableRetry.seconds),
                        "rate limiter unavailable (Redis); no start until it answers", "unavailable")
        }
        switch decision {
        case .admitted(let used, let probe, let breakerFailures, let poolKey):
            for (index, value) in used.enumerated() where index < budgetLabels.count {
                let label = budgetLabels[index]
                if let soft = label.soft, value >= soft {
                    let key = "\(job.tenant) \(label.label) \(label.window.name)"
                    if state.withLock({ $0.softWarned.insert(key).inserted }) {
                        logger.warning("soft budget reached", metadata: [
                            "tenant": "\(job.tenant)", "budget": "\(label.label)", "used": "\(Self.money(value))", "soft": "\(Self.money(soft))",
                        ])
                    }
                }
            }
            if probe { logger.notice("circuit breaker half-open: probing", metadata: ["model": "\(modelName)"]) }
            var taken = request
            var keyCooldown = cooldownKey
            var keyID: String?
            if let poolKey, poolKey < pool.count {
                // Settled with the rest; a 429 on this call cools down only this key.
                taken.buckets += pool[poolKey].buckets
                keyCooldown = pool[poolKey].cooldown
                keyID = pool[poolKey].id
            }
            return .start(Ticket(request: taken, provider: job.provider, model: job.model, modelBuckets: modelBuckets,
                                 cooldownKey: keyCooldown, breakerKey: breakerKey, recordSuccess: probe || breakerFailures > 0,
                                 probe: probe, keyID: keyID, envelopeTokens: envelopeTokens))
        case .pool(let delay):
            let until = now.addingTimeInterval(delay.seconds)
            skipModel(modelName, until: until)
            return wait(until, "rate limit: every API key of \(modelName) is short or cooling down; the first has room in \(Self.seconds(delay))",
                        "pool")
        case .breaker(let delay):
            let until = now.addingTimeInterval(delay.seconds)
            let reason = "circuit breaker open for \(modelName) (the provider is failing); next try in \(Self.seconds(delay))"
            state.withLock { s in
                s.nextTry[breakerKey] = max(s.nextTry[breakerKey] ?? until, until)
                s.blockReason[breakerKey] = reason
            }
            skipModel(modelName, until: until)
            return wait(until, reason, "breaker")
        case .bucket(let index, let delay):
            let blocking = buckets[index]
            let isTenant = index >= modelBuckets.count
            let until = now.addingTimeInterval(delay.seconds)
            let kind = blocking.key.split(separator: ":").last.map(String.init) ?? "rate"
            let owner = isTenant ? "tenant \(job.tenant)" : modelName
            let reason = "rate limit: \(owner) \(kind) bucket is empty (per-minute limit \(Self.integer(blocking.capacity)))"
            // Leave the tenant (or the provider/model) out of claims until about one refill of
            // this job's amount.
            let refill = now.addingTimeInterval(min(delay.seconds, max(0.05, blocking.amount / max(blocking.refillPerMillisecond, 1e-9) / 1000)))
            if isTenant {
                state.withLock { s in s.skip[job.tenant] = max(s.skip[job.tenant] ?? refill, refill) }
            } else {
                skipModel(modelName, until: refill)
            }
            // `delay` is this job's slot in the bucket's shared schedule (LimiterScripts.admit).
            return wait(until, reason, isTenant ? "tenant_" + kind : kind)
        case .cooldown(let index, let delay):
            let until = now.addingTimeInterval(delay.seconds)
            let reason = index < 0
                ? "provider window for \(modelName) used up (its rate-limit headers); resets in \(Self.seconds(delay))"
                : "provider cooldown for \(modelName) (a 429 or no capacity left at the provider)"
            state.withLock { s in
                s.nextTry[cooldownKey] = max(s.nextTry[cooldownKey] ?? until, until)
                s.blockReason[cooldownKey] = reason
            }
            skipModel(modelName, until: until)
            return wait(until, reason, index < 0 ? "window" : "cooldown")
        case .budget(let index, _):
            let label = budgetLabels[index]
            let budget = budgets[index]
            if label.recorded >= budget.limit {
                let reason = "\(label.label) spent"
                do {
                    try await store.holdTenant(job.tenant, until: label.window.end, reason: reason)
                } catch {
                    logger.warning("holding a tenant failed", metadata: ["tenant": "\(job.tenant)", "error": "\(error)"])
                }
                logger.notice("hard budget spent: tenant held", metadata: ["tenant": "\(job.tenant)", "budget": "\(label.label)",
                                                                            "until": "\(label.window.end)"])
                return wait(now, "tenant held: \(reason)", "budget")
            }
            let until = now.addingTimeInterval(configuration.budgetSettleRetry.seconds)
            state.withLock { s in s.skip[job.tenant] = max(s.skip[job.tenant] ?? until, until) }
            return wait(until, "\(label.label) is reserved by calls in flight; waiting for them to settle", "budget")
        }
    }

    /// The call ended: settle the reservation to what it used (refunding what a failed call
    /// reserved), and learn from the provider's answer (429 → cooldown for every worker;
    /// rate-limit headers → cooldown at zero remaining, bucket lowered to what remains).
    public func finish(_ ticket: Ticket?, provider: String, model: String, succeeded: Bool, errorClass: ErrorClass?,
                       usage: Usage?, costUSD: Double?, retryAfter: Duration?, rateLimits: RateLimitSnapshot?) async {
        guard let limiter else { return }
        let modelName = "\(provider)/\(model)"
        let cooldownKey = ticket?.cooldownKey ?? limiter.key("cool", modelName)
        let breakerKey = ticket?.breakerKey ?? limiter.key("brk", modelName)
        var cooldown: Duration?
        if errorClass == .rateLimited {
            cooldown = retryAfter ?? rateLimits?.requestsReset ?? rateLimits?.tokensReset ?? configuration.defaultCooldown
        }
        if let r = rateLimits {
            if r.requestsRemaining == 0 { cooldown = max(cooldown ?? .zero, r.requestsReset ?? configuration.defaultCooldown) }
            if r.tokensRemaining == 0 { cooldown = max(cooldown ?? .zero, r.tokensReset ?? configuration.defaultCooldown) }
        }
        let breakerFailure = errorClass.map { [.serverError, .overloaded, .timeout, .connection].contains($0) } ?? false
        if cooldown != nil || breakerFailure {
            // The provider pushes back or fails: this model's next starts are decided in Redis
            // again (where the cooldown and the breaker are checked), its gate closes and its
            // leases go back — here at once, in every other worker when the event arrives.
            modelEvent(modelName)
        }
        let announce = ticket?.keyID == nil ? modelName : nil
        if let cooldown, cooldown > .zero, ticket?.keyID == nil { skipModel(modelName, until: Date().addingTimeInterval(cooldown.seconds)) }
        do {
            if let cooldown, cooldown > .zero {
                try await limiter.cooldown(cooldownKey, for: cooldown, announce: announce)
                logger.info("provider cooldown", metadata: ["model": "\(modelName)", "seconds": "\(Self.seconds(cooldown))",
                                                             "key_id": "\(ticket?.keyID ?? "-")"])
            }
            if ticket?.keyID == nil, rateLimits?.tokensRemaining != nil || rateLimits?.requestsRemaining != nil {
                // Falling below what the gate and the leases need is announced to every worker.
                let envelope = ticket?.envelopeTokens ?? ((usage?.inputTokens ?? 0) + configuration.defaultMaxOutputTokens)
                let thresholds = windowThresholds(modelBuckets: ticket?.modelBuckets ?? [], envelopeTokens: envelope)
                if let remaining = rateLimits?.tokensRemaining, let reset = rateLimits?.tokensReset {
                    try await limiter.providerWindow(limiter.key("pw", modelName, "tok"), remaining: remaining, reset: reset,
                                                     announceBelow: (thresholds.tokens, modelName))
                }
                if let remaining = rateLimits?.requestsRemaining, let reset = rateLimits?.requestsReset {
                    try await limiter.providerWindow(limiter.key("pw", modelName, "req"), remaining: remaining, reset: reset,
                                                     announceBelow: (thresholds.requests, modelName))
                }
            }
            if let ticket, ticket.keyID == nil, let r = rateLimits {
                try await advertise(r, ticket: ticket, limiter: limiter)
            }
            if breakerFailure {
                if try await limiter.recordBreaker(breakerKey, success: false, policy: configuration.breaker, openFor: retryAfter,
                                                   announce: announce) {
                    logger.warning("circuit breaker opened", metadata: ["model": "\(modelName)", "error_class": "\(errorClass?.rawValue ?? "")"])
                }
            } else if succeeded, ticket?.recordSuccess == true {
                // With a reservation the success counts in the breaker in the settlement below
                // (the same round trip); without one, only when failures were on record at admission.
                if ticket?.reserved != true {
                    try await limiter.recordBreaker(breakerKey, success: true, policy: configuration.breaker)
                }
                state.withLock { s in
                    s.nextTry[breakerKey] = nil
                    s.blockReason[breakerKey] = nil
                }
            } else if ticket?.probe == true, !succeeded {
                // The probe's call ended without a verdict on the provider's health (a 429, a
                // refused request, a cancel, a lost lease). Before, the probe stayed taken until
                // its timeout (the job's timeout + 5 s), and every start of the model waited:
                // two minutes without a call in a demo run.
                try await limiter.releaseProbe(breakerKey)
                state.withLock { s in
                    s.nextTry[breakerKey] = nil
                    s.blockReason[breakerKey] = nil
                }
            }
        } catch {
            limiterFailed(error, "provider feedback")
        }
        guard let ticket, ticket.reserved else { return }
        let used = usage.map {
            RateLimiter.SettledUsage(inputTokens: $0.inputTokens + $0.cacheReadTokens + $0.cacheWriteTokens,
                                     outputTokens: $0.outputTokens, costUSD: costUSD ?? 0)
        } ?? .nothing
        if ticket.leased, let leases {
            // Settled locally: the difference between reservation and use goes back through
            // the lease (no round trip).
            for bucket in ticket.request.buckets { leases.credit(bucket, bucket.amount - bucket.settle(used)) }
            return
        }
        do {
            try await limiter.settle(ticket.request, usage: used,
                                     breakerSuccess: succeeded && !breakerFailure ? (ticket.breakerKey, configuration.breaker) : nil)
        } catch {
            state.withLock { $0.unsettled.append((ticket.request, used)) }
            limiterFailed(error, "settlement")
        }
    }

    /// A provider's advertised limits (requests and tokens per minute) lower than the model's
    /// configured RPM/TPM cap its buckets for every worker (``RateLimiter/advertise``); written
    /// when the figure changes and refreshed every quarter of its lifetime, so most responses
    /// cost no round trip. A figure at or above the configured one removes the cap.
    private func advertise(_ r: RateLimitSnapshot, ticket: Ticket, limiter: RateLimiter) async throws(RedisError) {
        for (limit, kind) in [(r.requestsLimit, "rpm"), (r.tokensLimit, "tpm")] {
            guard let limit, let bucket = ticket.modelBuckets.first(where: { $0.key.hasSuffix(":" + kind) }),
                  let capKey = bucket.capKey else { continue }
            let value: Int? = limit > 0 && Double(limit) < bucket.capacity ? limit : nil
            let now = ContinuousClock.now
            let refresh = configuration.advertisedLimitTTL / 4
            let due = state.withLock { s -> Bool in
                if let last = s.advertised[capKey], last.limit == value, value == nil || now - last.at < refresh { return false }
                s.advertised[capKey] = (value, now)
                return true
            }
            guard due else { continue }
            try await limiter.advertise(capKey, limit: value, ttl: configuration.advertisedLimitTTL)
            if let value {
                logger.info("provider advertises a lower limit: bucket capped", metadata: [
                    "model": "\(ticket.provider)/\(ticket.model)", "limit": "\(kind)", "advertised": "\(value)",
                    "configured": "\(Self.integer(bucket.capacity))",
                ])
            }
        }
    }

    /// Applies settlements kept while Redis was unreachable (each at most once: settlement is
    /// idempotent). Called after every successful admission and by ``run()``.
    public func flushUnsettled() async {
        guard let limiter else { return }
        let pending = state.withLock { s -> [(RateLimiter.Request, RateLimiter.SettledUsage)] in
            defer { s.unsettled = [] }
            return s.unsettled
        }
        guard !pending.isEmpty else { return }
        var failed: [(RateLimiter.Request, RateLimiter.SettledUsage)] = []
        for (index, item) in pending.enumerated() {
            do {
                try await limiter.settle(item.0, usage: item.1)
            } catch {
                failed = Array(pending[index...])
                break
            }
        }
        if !failed.isEmpty { state.withLock { $0.unsettled.insert(contentsOf: failed, at: 0) } }
        else { logger.notice("applied settlements kept while Redis was unreachable", metadata: ["count": "\(pending.count)"]) }
    }

    /// Background duty: retries kept settlements every `unavailableRetry`.
    /// Also listens on the limiter's events channel (with leasing on), which the model gate and
    /// the leases rely on to learn within milliseconds of another worker's 429 or breaker
    /// failure.
    public func run() async {
        let period = leases == nil ? configuration.unavailableRetry : min(configuration.unavailableRetry, configuration.leasing.duration)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listenForEvents() }
            while !Task.isCancelled {
                try? await Task.sleep(for: period)
                if unsettledCount > 0 { await flushUnsettled() }
                await returnLeases()
            }
            group.cancelAll()
        }
    }

    static func seconds(_ duration: Duration) -> String { String(format: "%.1fs", duration.seconds) }
    static func money(_ value: Double) -> String { String(format: "%.4f", value) }
    static func integer(_ value: Double) -> String { String(Int64(value)) }
}

extension Duration {
    /// The duration in (fractional) seconds.
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
