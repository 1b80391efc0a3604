import Foundation
import Logging
import Metrics
import Sluice

/// Route jobs (docs/ARCHITECTURE.md, "Routes"): a job that names a route runs against the
/// route's targets in order, starting at the target its last attempt left it at
/// (`jobs.route_step`).
///
/// - Before a call, admission decides per target. A target whose circuit breaker is open, that
///   is in a provider cooldown (a 429 seen by any worker) or whose provider window is used up,
///   that is paused, that has no price for a tenant with a USD budget, or whose bucket wait is
///   longer than the job's timeout, is passed over (recorded in the attempt's `skipped`). A
///   shorter bucket wait, or a tenant's own limits and budgets (the same for every target),
///   make the job wait without consuming an attempt, as for any job. When every remaining
///   target is passed over, the job waits until the soonest of them may start.
/// - After a failed call: `rate_limited`, `overloaded` and `server_error` move on to the next
///   target at once; `context_length` moves on to the next target whose known context window
///   is larger than the failed one's (a target with an unknown window is skipped); every other
///   class (`invalid_request`, `auth`, …) follows the normal retry and dead-letter rules on the
///   same target. Moving on is a new attempt (each call is one: give route jobs
///   `max_attempts` at least the route's length); its `attempts` row says why (`fallback`).
///   When the last target fails with a retryable class, the job is retried after the usual
///   backoff from the route's first target.
extension Worker {
    /// Admission limits whose wait is the same for every target: the job waits for them.
    static let tenantWideLimits: Set<String> = ["tenant_rpm", "tenant_tpm", "budget", "unavailable"]
    /// Model-bucket limits (and a key pool's): passed over only when their wait is longer than the job's timeout.
    static let bucketLimits: Set<String> = ["rpm", "tpm", "itpm", "otpm", "pool"]

    func executeRoute(_ job: Job, route name: String, control: JobControl) async -> AttemptOutcome? {
        func ended(_ kind: AttemptOutcome.Kind, _ errorClass: ErrorClass, _ message: String, reason: String) -> AttemptOutcome {
            var outcome = AttemptOutcome(jobID: job.id, attempt: job.attempt, kind: kind, startedAt: Date(), duration: .zero)
            outcome.errorClass = errorClass
            outcome.errorMessage = message
            outcome.reason = reason
            return outcome
        }
        let route: Route
        switch await routes.route(named: name) {
        case .found(let found) where !found.targets.isEmpty:
            route = found
        case .found, .missing:
            let outcome = ended(.dead, .notFound, "route \(name) does not exist or has no targets (changed after the job was queued)",
                                reason: "unknown route")
            record(outcome, of: job)
            return outcome
        case .unavailable(let error):
            var outcome = AttemptOutcome(jobID: job.id, attempt: job.attempt, kind: .deferred, startedAt: Date(), duration: .zero)
            outcome.retryAt = Date().addingTimeInterval(1)
            outcome.reason = "routes cannot be read: \(error)"
            return outcome
        }
        let targets = route.targets
        let floor = job.routeContextFloor
        let start = job.routeStep < targets.count ? job.routeStep : 0
        var skipped: [RouteSkip] = []
        var soonest: JobStore.Deferral?
        let now = Date()

        for index in start..<targets.count {
            let target = targets[index]
            guard let provider = providers(target.provider) else {
                skipped.append(RouteSkip(target: target, reason: "provider \(target.provider) is not configured on this worker"))
                continue
            }
            if let floor {
                let window = provider.contextWindow(model: target.model)
                guard let window, window > floor else {
                    skipped.append(RouteSkip(target: target, reason: "context window \(window.map(String.init) ?? "unknown") is not larger than \(floor)"))
                    continue
                }
            }
            var routed = job
            routed.provider = target.provider
            routed.model = target.model
            let verdict = await admission?.admit(routed) ?? .start(nil)
            switch verdict {
            case .wait(let deferral, let limit):
                metrics.rateLimitWait(provider: target.provider, model: target.model, limit: limit).increment()
                let tooLong = deferral.runAt.timeIntervalSince(now) > job.timeout.seconds
                if Self.tenantWideLimits.contains(limit) || (Self.bucketLimits.contains(limit) && !tooLong) {
                    // Waiting for this target (or for something every target shares).
                    var outcome = AttemptOutcome(jobID: job.id, attempt: job.attempt, kind: .deferred, startedAt: now, duration: .zero)
                    outcome.retryAt = deferral.runAt
                    outcome.reason = "route \(name) at \(target): \(deferral.reason)"
                    return outcome
                }
                let reason = Self.bucketLimits.contains(limit) ? "\(deferral.reason); the wait is longer than the job's timeout" : deferral.reason
                skipped.append(RouteSkip(target: target, reason: reason))
                metrics.routeFallback(provider: target.provider, model: target.model, reason: limit).increment()
                if deferral.runAt < (soonest?.runAt ?? .distantFuture) { soonest = deferral }
                logger.debug("route target passed over", metadata: ["job_id": "\(job.id)", "route": "\(name)", "target": "\(target)",
                                                                     "reason": "\(reason)"])
            case .start(let ticket):
                let result = await attempt(routed, control: control, keyID: ticket?.keyID)
                if let admission {
                    await admission.finish(ticket, provider: target.provider, model: target.model, succeeded: result?.kind == .succeeded,
                                           errorClass: result?.kind == .succeeded ? nil : result?.errorClass, usage: result?.usage,
                                           costUSD: result?.costUSD, retryAfter: result?.retryAfter,
                                           rateLimits: result?.rateLimits ?? result?.result?.rateLimits)
                }
                guard var outcome = result else { return nil }
                outcome.skipped = skipped
                fallBack(&outcome, job: job, route: route, at: index, floor: floor)
                record(outcome, of: routed)
                return outcome
            }
        }
        if let soonest {
            var outcome = AttemptOutcome(jobID: job.id, attempt: job.attempt, kind: .deferred, startedAt: now, duration: .zero)
            outcome.retryAt = soonest.runAt
            outcome.reason = "route \(name): no target can start now (" + skipped.map { "\($0.target): \($0.reason)" }.joined(separator: "; ") + ")"
            return outcome
        }
        // Nothing to call: every remaining target is unusable on this worker or too small.
        let why = skipped.map { "\($0.target): \($0.reason)" }.joined(separator: "; ")
        var outcome: AttemptOutcome
        if let floor {
            outcome = ended(.dead, .contextLength, "route \(name) has no target with a context window larger than \(floor) (\(why))",
                            reason: "context_length: no larger target in the route")
        } else {
            outcome = ended(.dead, .notFound, "route \(name) has no target this worker can call (\(why))", reason: "no usable route target")
        }
        outcome.skipped = skipped
        record(outcome, of: job)
        return outcome
    }

    /// Turns a failed attempt at `targets[index]` into a move to the next target when its
    /// error class calls for one and the job has attempts left.
    private func fallBack(_ outcome: inout AttemptOutcome, job: Job, route: Route, at index: Int, floor: Int?) {
        guard outcome.kind == .retry || outcome.kind == .dead, let errorClass = outcome.errorClass else { return }
        let targets = route.targets
        func window(_ target: RouteTarget) -> Int? { providers(target.provider)?.contextWindow(model: target.model) }
        var newFloor = floor
        var next: Int?
        switch errorClass {
        case .rateLimited, .overloaded, .serverError:
            next = targets.indices.first { candidate in candidate > index && floor.map { (window(targets[candidate]) ?? 0) > $0 } ?? true }
        case .contextLength:
            guard let failed = window(targets[index]) else { break }
            let limit = max(floor ?? 0, failed)
            newFloor = limit
            next = targets.indices.first { $0 > index && (window(targets[$0]) ?? 0) > limit }
        default:
            return
        }
        if let next, job.attempt < job.maxAttempts {
            outcome.kind = .retry
            outcome.retryAt = Date()
            outcome.retryDelay = .zero
            outcome.reason = nil
            outcome.fallback = "\(errorClass.rawValue): moved on to \(targets[next])"
            metrics.routeFallback(provider: targets[index].provider, model: targets[index].model, reason: errorClass.rawValue).increment()
            outcome.routeStep = next
            outcome.routeContextFloor = newFloor
        } else if outcome.kind == .retry {
            // The last target failed too: after the backoff, from the first target again.
            outcome.routeStep = 0
            outcome.routeContextFloor = newFloor
        } else if next == nil, errorClass == .contextLength || [.rateLimited, .overloaded, .serverError].contains(errorClass) {
            outcome.reason = (outcome.reason.map { $0 + "; " } ?? "") + "no further target in route \(route.name)"
        }
    }
}
