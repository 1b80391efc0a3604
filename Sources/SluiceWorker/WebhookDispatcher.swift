import Foundation
public import Logging
public import ServiceLifecycle
public import Sluice
public import SluiceHTTP
import SluicePostgres
import SluiceSupport

/// Delivers the webhook outbox (`sluice.webhook_deliveries`): claims due deliveries with
/// `FOR UPDATE SKIP LOCKED` (dispatchers of every worker process share the outbox), sends each
/// signed per Standard Webhooks through the SSRF guard over the shared ``HTTPClient``, many at
/// once, and records outcomes in groups. A `ServiceLifecycle.Service`: on graceful shutdown it
/// stops claiming and lets deliveries in flight finish (each is bounded by the request timeout).
///
/// A delivery is at least once: a dispatcher killed after sending and before recording leaves
/// the row to be claimed again after ``Configuration/lease``, and it is sent again with the same
/// `webhook-id`, which receivers use to drop duplicates.
public final class WebhookDispatcher: Service, Sendable {
    /// How deliveries are claimed, sent and retried. Every field has a production default.
    public struct Configuration: Sendable {
        /// Deliveries in flight at once per process. Default 64.
        public var concurrency: Int = 64
        /// Most deliveries one claim takes. Default 100.
        public var claimBatch: Int = 100
        /// How long a claimed delivery stays claimed: after this, a delivery whose dispatcher died
        /// is due again. Must exceed ``timeout``. Default 60 s.
        public var lease: Duration = .seconds(60)
        /// Limit on one delivery attempt (connect to last byte). Default 15 s.
        public var timeout: Duration = .seconds(15)
        /// Delay before each attempt: the first entry is before attempt 1 (in practice 0:
        /// immediately), entry k before attempt k+1. The number of entries is the number of
        /// attempts. Default: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (Standard
        /// Webhooks' suggestion).
        public var schedule: [Duration] = [.zero, .seconds(5), .seconds(300), .seconds(1800), .seconds(7200),
                                           .seconds(18000), .seconds(36000), .seconds(36000)]
        /// Each retry delay is multiplied by a random factor in [1 − jitter, 1 + jitter]. Default 0.1.
        public var jitter: Double = 0.1
        /// Longest `Retry-After` (429, 502, 503, 504) honoured; longer ones are capped. Default 10 h.
        public var maxRetryAfter: Duration = .seconds(36000)
        /// An endpoint failing for longer than this without a success is disabled. Default 5 days.
        public var disableAfter: Duration = .seconds(5 * 86_400)
        /// How often to look for due deliveries when the last claim found none (jittered ±20 %).
        /// New deliveries wake the dispatcher at once (`NOTIFY sluice_webhooks` from the outbox
        /// trigger), so the poll only finds retries coming due and deliveries whose dispatcher
        /// died; it bounds how late those start. Default 1 s.
        public var pollInterval: Duration = .seconds(1)
        /// Outcomes are written in groups of at most this many… Default 200.
        public var completionBatch: Int = 200
        /// …or after this long. Default 5 ms.
        public var completionInterval: Duration = .milliseconds(5)
        /// Networks permitted whatever their address class, and over plain http (see
        /// ``WebhookAddressGuard``). Default: none; `SLUICE_WEBHOOK_ALLOW` adds to it.
        public var allowed: [WebhookAddressGuard.Network] = []
        /// The `User-Agent` of deliveries. Default `sluice-webhooks`.
        public var userAgent: String = "sluice-webhooks"
        /// Delivered and failed outbox rows older than this are pruned. Default 7 days.
        public var retention: Duration = .seconds(7 * 86_400)

        public init() {}

        /// Checks the values; the error's rule names the field.
        public func validate() throws(WebhookError) {
            func fail(_ field: String, _ rule: String) -> WebhookError {
                WebhookError(.invalidConfiguration, "webhooks.\(field) \(rule)", rule: field)
            }
            guard concurrency >= 1 && concurrency <= 10_000 else { throw fail("concurrency", "must be from 1 to 10000") }
            guard claimBatch >= 1 && claimBatch <= 10_000 else { throw fail("claimBatch", "must be from 1 to 10000") }
            guard timeout > .zero else { throw fail("timeout", "must be positive") }
            guard lease > timeout else { throw fail("lease", "must exceed the timeout") }
            guard !schedule.isEmpty, schedule.allSatisfy({ $0 >= .zero }) else {
                throw fail("schedule", "must have at least one delay, none negative")
            }
            guard jitter >= 0 && jitter < 1 else { throw fail("jitter", "must be in [0, 1)") }
            guard disableAfter > .zero else { throw fail("disableAfter", "must be positive") }
            guard pollInterval > .zero, completionInterval > .zero else { throw fail("pollInterval", "must be positive") }
            guard completionBatch >= 1 else { throw fail("completionBatch", "must be at least 1") }
        }

        /// The delay before attempt `attempt + 1` after attempt `attempt` failed, jittered; nil
        /// when `attempt` was the last.
        func delay(after attempt: Int) -> Duration? {
            guard attempt >= 1 && attempt < schedule.count else { return nil }
            let base = schedule[attempt]
            guard jitter > 0, base > .zero else { return base }
            return base * Double.random(in: (1 - jitter)...(1 + jitter))
        }
    }

    let configuration: Configuration
    let store: JobStore
    let http: HTTPClient
    let addressGuard: WebhookAddressGuard
    let logger: Logger
    private let inFlight = Locked(0)
    private let stopping = Locked(false)
    private let outcomes = Locked<[WebhookOutcome]>([])
    private let slotFreed = Wakeup()
    private let outcomeReady = Wakeup()

    /// - Parameters:
    ///   - http: the client deliveries go through (it never follows redirects).
    public init(configuration: Configuration, store: JobStore, http: HTTPClient, logger: Logger) throws(WebhookError) {
        try configuration.validate()
        JobTracing.refresh()
        self.configuration = configuration
        self.store = store
        self.http = http
        self.addressGuard = WebhookAddressGuard(allowed: configuration.allowed)
        self.logger = logger
    }

    public func run() async throws {
        logger.info("webhook dispatcher started", metadata: ["concurrency": "\(configuration.concurrency)"])
        await withDiscardingTaskGroup { background in
            background.addTask { await self.writeLoop() }
            background.addTask { await self.pruneLoop() }
            background.addTask { await self.listenLoop() }
            await withGracefulShutdownHandler {
                await self.claimLoop()
            } onGracefulShutdown: {
                self.stopping.withLock { $0 = true }
                Task { await self.slotFreed.signal() }
            }
            // Deliveries in flight are done: stop the helpers, then write what is left (a write
            // the writer had in flight when it was cancelled is back in the buffer).
            background.cancelAll()
        }
        await flush(attempts: 10)
        logger.info("webhook dispatcher stopped")
    }

    // MARK: Claiming

    private func claimLoop() async {
        await withDiscardingTaskGroup { deliveries in
            // Cancelled (another service of the group failed): stop at once, or every claim would
            // fail as cancelled and the loop would spin.
            while !stopping.current && !Task.isCancelled {
                let free = configuration.concurrency - inFlight.current
                guard free > 0 else {
                    await slotFreed.wait(timeout: .milliseconds(100))
                    continue
                }
                let claimed: [WebhookDelivery]
                do {
                    claimed = try await store.claimWebhooks(limit: min(free, configuration.claimBatch), lease: configuration.lease)
                } catch {
                    logger.warning("webhook claim failed", metadata: ["error": "\(error)"])
                    await slotFreed.wait(timeout: .seconds(1))
                    continue
                }
                for delivery in claimed {
                    inFlight.withLock { $0 += 1 }
                    deliveries.addTask {
                        let outcome = await self.deliver(delivery)
                        self.outcomes.withLock { $0.append(outcome) }
                        await self.outcomeReady.signal()
                        self.inFlight.withLock { $0 -= 1 }
                        await self.slotFreed.signal()
                    }
                }
                if claimed.count < min(free, configuration.claimBatch) {
                    await slotFreed.wait(timeout: configuration.pollInterval * Double.random(in: 0.8...1.2))
                }
            }
        }
    }

    /// Wakes the claim loop when deliveries become due (and after the listener reconnected,
    /// since notifications sent meanwhile are lost). Ends when cancelled.
    private func listenLoop() async {
        for await _ in store.postgres.listen([StoreNames.webhooksChannel]) {
            await slotFreed.signal()
        }
    }

    // MARK: Recording outcomes

    private func writeLoop() async {
        while !Task.isCancelled {
            await outcomeReady.wait(timeout: .seconds(1))
            if outcomes.withLock({ $0.count }) < configuration.completionBatch {
                try? await Task.sleep(for: configuration.completionInterval)
            }
            await flush()
        }
    }

    /// Writes every buffered outcome, retrying a failed write until it succeeds, the task is
    /// cancelled or `attempts` writes failed (an outcome that is never written only means the
    /// delivery is sent again after its lease, with the same webhook-id).
    private func flush(attempts: Int = .max) async {
        var failures = 0
        while true {
            let batch: [WebhookOutcome] = outcomes.withLock { buffer in
                let batch = Array(buffer.prefix(configuration.completionBatch))
                buffer.removeFirst(batch.count)
                return batch
            }
            if batch.isEmpty { return }
            do {
                try await store.finishWebhooks(batch, disableAfter: configuration.disableAfter)
            } catch {
                outcomes.withLock { $0.insert(contentsOf: batch, at: 0) }
                failures += 1
                if Task.isCancelled { return }
                logger.warning("recording webhook outcomes failed; retrying", metadata: ["error": "\(error)", "count": "\(batch.count)"])
                if failures >= attempts { return }
                do { try await Task.sleep(for: .milliseconds(500)) } catch { return }
            }
        }
    }

    private func pruneLoop() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: .seconds(60) * Double.random(in: 0.8...1.2)) } catch { return }
            do {
                while try await store.pruneWebhooks(retention: configuration.retention) >= 1000 {}
            } catch {
                logger.warning("webhook pruning failed", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: Delivering

    /// Sends one delivery attempt (in its trace span) and decides what happens next.
    func deliver(_ delivery: WebhookDelivery) async -> WebhookOutcome {
        await JobTracing.webhookDelivery(delivery) { traceparent in await send(delivery, traceparent: traceparent) }
    }

    /// Sends one delivery attempt, with `traceparent` when there is one.
    private func send(_ delivery: WebhookDelivery, traceparent: String?) async -> WebhookOutcome {
        let url = WebhookURL.redacted(delivery.url)
        if let reason = delivery.disabledReason {
            return WebhookOutcome(id: delivery.id, attempt: delivery.attempt, kind: .skipped,
                                  error: "not sent: the endpoint \(url) is disabled (\(reason))")
        }
        guard !delivery.secrets.isEmpty else {
            return failure(delivery, status: nil,
                           "tenant \(delivery.tenant) has no webhook secret: run `sluice tenants rotate-secret \(delivery.tenant)`")
        }
        let timestamp = Int(Date().timeIntervalSince1970)
        var request: HTTPRequest
        do {
            let endpoint = try WebhookAddressGuard.endpoint(of: delivery.url)
            let address = try await addressGuard.permittedAddress(for: endpoint)
            let signature = try WebhookSigner.signatureHeader(secrets: delivery.secrets, id: delivery.webhookID,
                                                              timestamp: timestamp, body: delivery.payload)
            request = HTTPRequest(
                method: "POST", url: delivery.url,
                headers: [
                    "Content-Type": "application/json",
                    "User-Agent": configuration.userAgent,
                    "webhook-id": delivery.webhookID,
                    "webhook-timestamp": String(timestamp),
                    "webhook-signature": signature,
                ],
                body: delivery.payload,
                timeouts: .init(connect: configuration.timeout, firstByte: configuration.timeout, idle: configuration.timeout,
                                total: configuration.timeout))
            if let traceparent { request.headers.replaceOrAdd(name: "traceparent", value: traceparent) }
            if !endpoint.hostIsAddress {
                request.pinnedAddress = .init(host: endpoint.host, port: endpoint.port, address: address.description)
            }
        } catch {
            // Refused or unusable: retried on the schedule (the operator may allow-list the
            // address, or DNS may change), then failed.
            return failure(delivery, status: nil, "\(url): \(error.message)")
        }
        do {
            let response = try await http.execute(request)
            // Read a little of the body so the connection can be reused; the rest is dropped.
            var read = 0
            do {
                for try await chunk in response.body {
                    read += chunk.count
                    if read > 64 * 1024 { break }
                }
            } catch {}
            let status = response.status
            if (200..<300).contains(status) {
                return WebhookOutcome(id: delivery.id, attempt: delivery.attempt, kind: .delivered, status: status)
            }
            if status == 410 {
                return WebhookOutcome(id: delivery.id, attempt: delivery.attempt, kind: .gone, status: status,
                                      error: "\(url) answered 410 Gone: the endpoint is disabled")
            }
            if (300..<400).contains(status) {
                return failure(delivery, status: status, "\(url) answered \(status) (a redirect; redirects are not followed)")
            }
            var retryAfter: Duration?
            if [429, 502, 503, 504].contains(status), let value = response.headers["Retry-After"] {
                retryAfter = Self.retryAfter(value).map { min($0, configuration.maxRetryAfter) }
            }
            return failure(delivery, status: status, "\(url) answered \(status)", retryAfter: retryAfter)
        } catch {
            return failure(delivery, status: nil, "\(url): \(error.code): \(error.message)")
        }
    }

    /// A failed attempt: retried after the schedule's next delay (or `retryAfter`), or failed
    /// when it was the last.
    private func failure(_ delivery: WebhookDelivery, status: Int?, _ message: String, retryAfter: Duration? = nil) -> WebhookOutcome {
        guard let delay = configuration.delay(after: delivery.attempt) else {
            return WebhookOutcome(id: delivery.id, attempt: delivery.attempt, kind: .failed, status: status,
                                  error: message + " (attempt \(delivery.attempt) of \(configuration.schedule.count); no retries left)")
        }
        let wait = retryAfter ?? delay
        let seconds = Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18
        return WebhookOutcome(id: delivery.id, attempt: delivery.attempt, kind: .retry, status: status,
                              error: message, nextAttemptAt: Date().addingTimeInterval(seconds))
    }

    /// `Retry-After` as seconds or an HTTP date; nil when neither.
    static func retryAfter(_ value: String) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return .milliseconds(Int(max(0, date.timeIntervalSinceNow) * 1000))
    }
}
