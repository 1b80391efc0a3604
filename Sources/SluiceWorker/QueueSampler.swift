public import Logging
import Metrics
public import ServiceLifecycle
public import Sluice
public import SluicePostgres

/// Samples queue depth and the oldest runnable job's age per lane into
/// ``WorkerMetrics/queueDepth``, ``WorkerMetrics/queueScheduled`` and
/// ``WorkerMetrics/queueOldestAge`` — from one elected process only, so the fleet exports each
/// series once and the database runs one sampling query per interval, however many worker
/// processes there are.
///
/// Election: every `interval` a process that is not the sampler opens its own connection and
/// tries `pg_try_advisory_lock` (``JobStore/tryBecomeQueueSampler(on:)``); the winner keeps
/// that session (and so the lock) and samples on it, the others close theirs. When the
/// sampler's session breaks or the process stops, the lock goes with it and another process
/// wins at its next try. A process that stops sampling removes its queue series, so a stale
/// value never lingers; ``WorkerMetrics/queueSampler`` is 1 on the sampler.
public final class QueueSampler: Service, Sendable {
    /// How the sampler runs.
    public struct Configuration: Sendable {
        /// Time between samples (and between election attempts). Default 15 s, a typical
        /// Prometheus scrape interval.
        public var interval: Duration = .seconds(15)

        public init() {}
    }

    private let configuration: Configuration
    private let postgres: PostgresConfiguration
    private let logger: Logger
    private let leader = Gauge(label: WorkerMetrics.queueSampler)

    /// - Parameter postgres: where to connect; the sampler opens its own session (not a pooled
    ///   connection), since the election lock lives as long as that session.
    public init(configuration: Configuration = .init(), postgres: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.postgres = postgres
        self.logger = logger
    }

    public func run() async throws {
        // Graceful shutdown cancels the loop; the session (and the lock) closes on the way out.
        try? await cancelWhenGracefulShutdown { await self.loop() }
    }

    private func loop() async {
        leader.record(0)
        var session: PostgresConnection?
        var series: [Gauge] = []
        while !Task.isCancelled {
            do {
                if session == nil {
                    let connection = try await PostgresConnection.connect(configuration: postgres, logger: logger)
                    if try await JobStore.tryBecomeQueueSampler(on: connection) {
                        session = connection
                        leader.record(1)
                        logger.info("this process samples queue depth for metrics")
                    } else {
                        await connection.close()
                    }
                }
                if let session {
                    series = try await sample(on: session)
                }
            } catch {
                if let lost = session {
                    logger.warning("queue sampling failed; giving up the sampler role", metadata: ["error": "\(error)"])
                    await lost.close()
                    session = nil
                    leader.record(0)
                    for gauge in series { gauge.destroy() }
                    series = []
                } else {
                    logger.debug("queue sampler election failed", metadata: ["error": "\(error)"])
                }
            }
            try? await Task.sleep(for: configuration.interval)
        }
        await session?.close()
        for gauge in series { gauge.destroy() }
        leader.record(0)
    }

    /// One sample; returns the gauges it set (to remove them when this process stops sampling).
    private func sample(on session: PostgresConnection) async throws -> [Gauge] {
        var gauges: [Gauge] = []
        for lane in try await JobStore.queueStatistics(on: session) {
            let dimensions = [("lane", lane.lane.rawValue)]
            let depth = Gauge(label: WorkerMetrics.queueDepth, dimensions: dimensions)
            let scheduled = Gauge(label: WorkerMetrics.queueScheduled, dimensions: dimensions)
            let age = Gauge(label: WorkerMetrics.queueOldestAge, dimensions: dimensions)
            depth.record(lane.runnable)
            scheduled.record(lane.scheduled)
            let (seconds, attoseconds) = lane.oldestAge.components
            age.record(Double(seconds) + Double(attoseconds) / 1e18)
            gauges += [depth, scheduled, age]
        }
        return gauges
    }
}
