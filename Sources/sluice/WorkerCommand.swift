import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Sluice
import SluiceHTTP
import SluicePostgres
import SluiceRedis
import SluiceProviders
import SluiceRedis
import SluiceWorker
import UnixSignals

/// `sluice worker`: a supervisor with N worker processes (default one per core), or with
/// `--child` a single worker process.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run worker processes that claim and execute jobs.")

    @OptionGroup var options: GlobalOptions

    @Option(name: .long, help: "Worker processes (default: one per core). The supervisor restarts crashed ones.")
    var processes: Int?

    @Option(name: .long, help: "Jobs run at once per process.")
    var concurrency: Int = 256

    @Option(name: .long, help: "Comma-separated lanes to serve (default: all).")
    var lanes: String?

    @Option(name: .long, help: "Comma-separated tenants to serve (default: all).")
    var tenants: String?

    @Option(name: .long, help: "Lease on a running job in seconds; leases are renewed every third of it (default 10, renewed every 3 s).")
    var leaseSeconds: Double?

    @Option(name: .long, help: "Seconds in-flight jobs get to finish on SIGTERM (default 30).")
    var graceSeconds: Double?

    @Option(name: .long, help: "Seconds after the grace period a stopping worker keeps retrying to write finished jobs' outcomes while the database does not answer; then it exits and those jobs run again once their leases expire (default 10).")
    var shutdownWriteSeconds: Double?

    @Option(name: .long, help: "Slots kept for interactive jobs and tenants with few jobs running (default: concurrency/20).")
    var interactiveReserve: Int?

    @Option(name: .long, help: "Fallback poll interval in milliseconds (default 1000).")
    var pollMs: Int?

    @Option(name: .long, help: "Most jobs one claim statement takes; more free slots are claimed by consecutive claims (default 128).")
    var claimBatch: Int?

    @Option(name: .long, help: "Jobs a process may hold claimed beyond its free slots, started as slots free up (default 0: off; helps small pools of short calls).")
    var claimAhead: Int?

    /// `--no-notify-done-after-commit`: completions notify waiters inside their transaction (the behaviour before; for comparisons).
    @Flag(name: .long, inversion: .prefixedNo, help: .hidden)
    var notifyDoneAfterCommit = true

    @Option(name: .long, help: "Most tenants one claim reads per lane, in fair-queue order (default 256; a claim of N jobs reads at most N + 8).")
    var claimTenantWindow: Int?

    @Option(name: .long, help: "CPU headroom: scheduling lag in milliseconds above which fewer ordinary jobs run (default: off; 0: off).")
    var schedulingLagTargetMs: Double?

    @Option(name: .long, help: "Most outcomes one completion statement writes (default 500).")
    var completionBatch: Int?

    @Option(name: .long, help: "Longest an outcome waits for its completion statement, in milliseconds (default 25).")
    var completionIntervalMs: Int?

    @Option(name: .long, help: "Serve /metrics, /healthz and /readyz on this port; worker process i (from 0) uses port + i (default: $SLUICE_METRICS_PORT; no server when neither is set).")
    var metricsPort: Int?

    @Option(name: .long, help: "Address the metrics server binds.")
    var metricsHost: String = "0.0.0.0"

    @Option(name: .long, help: "Seconds between the queue depth samples taken by one elected process (default 15).")
    var queueSampleSeconds: Double?

    @Option(name: .long, help: "Finished jobs older than this are pruned with their results and attempts (default 7d).")
    var retention: String?

    @Option(name: .long, help: "Dead jobs and their dead letters are kept this long (default 30d).")
    var deadRetention: String?

    @Option(name: .long, help: "How often one elected process prunes (default 60s).")
    var pruneInterval: String?

    @Flag(name: .long, inversion: .prefixedNo, help: "Lease slices of rate-limit buckets that are far from their limit and admit from them locally (off: every start of a limited job asks Redis).")
    var limitLeasing = true

    @Flag(name: .long, inversion: .prefixedNo, help: "Leave provider/models that are cooling down, behind an open breaker or with an empty bucket out of claims until their refill time.")
    var skipLimitedModels = true

    @Flag(name: .long, inversion: .prefixedNo, help: "Deliver the webhook outbox from this worker's processes.")
    var webhooks = true

    @Option(name: .long, help: "Webhook deliveries in flight per process (default 64).")
    var webhookConcurrency: Int?

    @Option(name: .long, help: "Webhook retry schedule: comma-separated delays before each attempt (default 0,5s,5m,30m,2h,5h,10h,10h).")
    var webhookSchedule: String?

    @Option(name: .long, help: "Seconds one webhook delivery attempt may take (default 15).")
    var webhookTimeoutSeconds: Double?

    @Option(name: .long, help: "Seconds a claimed webhook delivery stays claimed before another process may send it (default 60).")
    var webhookLeaseSeconds: Double?

    @Option(name: .long, help: "Disable an endpoint failing without a success for this long (default 5d).")
    var webhookDisableAfter: String?

    @Option(name: .long, help: "Networks webhooks may reach whatever their class, and over http (CIDR, comma-separated; added to $SLUICE_WEBHOOK_ALLOW).")
    var webhookAllow: String?

    @Option(name: .long, help: "Export traces over OTLP/HTTP to this URL (default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT; no export when none is set).")
    var otlpEndpoint: String?

    @Flag(name: .long, help: .hidden)
    var child = false

    /// Given by the supervisor to each child: the child's worker id is `host:pid:token`
    /// (`Worker.processID`), which the supervisor therefore knows without asking.
    @Option(name: .long, help: .hidden)
    var workerToken: String?

    func run() async throws {
        if child {
            try await runWorker()
        } else {
            let count = processes ?? ProcessInfo.processInfo.activeProcessorCount
            guard count >= 1 && count <= 256 else { throw ValidationError("--processes must be from 1 to 256") }
            _ = try workerConfiguration()  // validate before spawning anything
            let port = try resolvedMetricsPort(processes: count)
            _ = try webhookConfiguration()
            let logger = try options.makeLogger("sluice.supervisor", defaultFormat: .json)
            let postgresConfiguration = try options.postgresConfiguration()
            let code = await WorkerSupervisor(
                processes: count, metricsPorts: port.map { port in (0..<count).map { port + $0 } },
                childArguments: { slot, token in childArguments(metricsPort: port.map { $0 + slot }, token: token) },
                rescue: { workerID, reason in
                    // A short-lived connection per rescue: the supervisor holds none otherwise.
                    let postgres = PostgresClient(configuration: postgresConfiguration,
                                                  pool: .init(maxConnections: 1, acquireTimeout: .seconds(10), idleHealthCheck: nil),
                                                  logger: logger)
                    do {
                        let count = try await JobStore(postgres: postgres).rescueWorker(workerID, reason: reason)
                        await postgres.shutdown()
                        return count
                    } catch {
                        await postgres.shutdown()
                        throw error
                    }
                },
                logger: logger).run()
            if code != 0 { throw ExitCode(code) }
        }
    }

    /// The supervisor's arguments for one child: without `--processes`, with that child's own
    /// `--metrics-port`.
    private func childArguments(metricsPort: Int?, token: String) -> [String] {
        var arguments = Array(CommandLine.arguments.dropFirst())
        for option in ["--processes", "--metrics-port", "--worker-token"] {
            while let index = arguments.firstIndex(of: option) {
                arguments.removeSubrange(index...min(index + 1, arguments.count - 1))
            }
            arguments.removeAll { $0.hasPrefix(option + "=") }
        }
        if let metricsPort { arguments += ["--metrics-port", "\(metricsPort)"] }
        return arguments + ["--worker-token", token, "--child"]
    }

    /// The first process's metrics port (`--metrics-port`, else $SLUICE_METRICS_PORT), nil for
    /// none; checked so that every process's port (port + i) is valid.
    func resolvedMetricsPort(processes: Int) throws -> Int? {
        let text = metricsPort.map(String.init) ?? ProcessInfo.processInfo.environment["SLUICE_METRICS_PORT"].flatMap { $0.isEmpty ? nil : $0 }
        guard let text else { return nil }
        guard let port = Int(text), port >= 1, port + processes - 1 <= 65535 else {
            throw ValidationError("--metrics-port (or SLUICE_METRICS_PORT) must be from 1 to \(65536 - processes) for \(processes) process(es) (got \(text))")
        }
        return port
    }

    func workerConfiguration() throws -> WorkerConfiguration {
        var configuration = WorkerConfiguration()
        configuration.concurrency = concurrency
        if let lanes {
            configuration.lanes = try lanes.split(separator: ",").map { name in
                guard let lane = Lane(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--lanes: unknown lane \(name); lanes are interactive, high, normal, batch")
                }
                return lane
            }
        }
        if let tenants { configuration.tenants = tenants.split(separator: ",").map { String($0) } }
        if let leaseSeconds {
            configuration.lease = .milliseconds(Int(leaseSeconds * 1000))
            configuration.heartbeatInterval = configuration.lease / 3
        }
        if let graceSeconds { configuration.shutdownGracePeriod = .milliseconds(Int(graceSeconds * 1000)) }
        if let shutdownWriteSeconds { configuration.shutdownWriteTimeout = .milliseconds(Int(shutdownWriteSeconds * 1000)) }
        if let pollMs { configuration.pollInterval = .milliseconds(pollMs) }
        if let claimBatch { configuration.maxClaimBatch = claimBatch }
        if let claimAhead { configuration.claimAhead = claimAhead }
        configuration.notifyDoneAfterCommit = notifyDoneAfterCommit
        if let claimTenantWindow { configuration.claimTenantWindow = claimTenantWindow }
        if let completionBatch { configuration.completionBatch = completionBatch }
        if let completionIntervalMs { configuration.completionInterval = .milliseconds(completionIntervalMs) }
        if let retention { configuration.retention = try DurationText.required(retention, option: "--retention") }
        if let deadRetention { configuration.deadRetention = try DurationText.required(deadRetention, option: "--dead-retention") }
        if let pruneInterval { configuration.pruneInterval = try DurationText.required(pruneInterval, option: "--prune-interval") }
        if let schedulingLagTargetMs {
            guard schedulingLagTargetMs >= 0, schedulingLagTargetMs <= 10_000 else {
                throw ValidationError("--scheduling-lag-target-ms must be from 0 (off) to 10000 (got \(schedulingLagTargetMs))")
            }
            configuration.schedulingLagTarget = schedulingLagTargetMs == 0 ? nil : .microseconds(Int(schedulingLagTargetMs * 1000))
        }
        configuration.interactiveReserve = interactiveReserve
        do {
            try configuration.validate()
        } catch {
            throw ValidationError(error.message)
        }
        return configuration
    }

    func webhookConfiguration() throws -> WebhookDispatcher.Configuration {
        var configuration = WebhookDispatcher.Configuration()
        if let webhookConcurrency { configuration.concurrency = webhookConcurrency }
        if let webhookSchedule {
            configuration.schedule = try webhookSchedule.split(separator: ",").map {
                try DurationText.required(String($0), option: "--webhook-schedule")
            }
        }
        if let webhookTimeoutSeconds { configuration.timeout = .milliseconds(Int(webhookTimeoutSeconds * 1000)) }
        if let webhookLeaseSeconds { configuration.lease = .milliseconds(Int(webhookLeaseSeconds * 1000)) }
        if let webhookDisableAfter {
            configuration.disableAfter = try DurationText.required(webhookDisableAfter, option: "--webhook-disable-after")
        }
        do {
            configuration.allowed = try WebhookAddressGuard.allowList(ProcessInfo.processInfo.environment["SLUICE_WEBHOOK_ALLOW"] ?? "")
                + WebhookAddressGuard.allowList(webhookAllow ?? "")
            try configuration.validate()
        } catch {
            throw ValidationError(error.message)
        }
        return configuration
    }

    private func runWorker() async throws {
        let logger = try options.makeLogger("sluice.worker", defaultFormat: .json)
        let configuration = try workerConfiguration()
        let metricsPort = try resolvedMetricsPort(processes: 1)
        // Before the worker creates its metric handles: swift-metrics binds them to the factory
        // in place when they are made.
        let registry = metricsPort.map { _ in PrometheusBackend.bootstrap() }
        let providersConfiguration = try ProvidersConfiguration.load(environment: options.environment)
        let prices = try PriceTable(overrides: providersConfiguration.priceOverrides, logger: logger)
        let http = HTTPClient(logger: logger)
        let providers = ProviderRegistry(configuration: providersConfiguration, httpClient: http, priceTable: prices, logger: logger)
        let postgres = PostgresClient(configuration: try options.postgresConfiguration(),
                                      pool: .init(maxConnections: 8), logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: postgres), .init(service: http)]
        // First in the group, so it starts first and stops (flushing spans) last.
        if let traces = try TraceExport.bootstrap(endpoint: otlpEndpoint, environment: options.environment, logger: logger) {
            services.insert(.init(service: traces), at: 0)
        }
        var limiter: RateLimiter?
        if let redisConfiguration = try options.redisConfiguration() {
            let redis = RedisClient(configuration: redisConfiguration, logger: logger)
            services.append(.init(service: redis))
            limiter = RateLimiter(redis: redis)
        }
        var admissionConfiguration = AdmissionConfiguration()
        admissionConfiguration.fileLimits = providersConfiguration.modelLimits
        admissionConfiguration.leasing.enabled = limitLeasing
        admissionConfiguration.skipLimitedModels = skipLimitedModels
        for (lane, fraction) in providersConfiguration.laneReserve {
            if let lane = Lane(rawValue: lane) { admissionConfiguration.laneReserve[lane] = fraction }
        }
        let admission = try Admission(
            configuration: admissionConfiguration, limiter: limiter, store: JobStore(postgres: postgres),
            cost: { provider, model, usage in
                let kind = providersConfiguration.provider(named: provider)?.kind.rawValue
                return prices.cost(providers: [provider] + (kind.map { [$0] } ?? []), model: model, usage: usage)
            }, logger: logger)
        if let workerToken, workerToken.isEmpty || workerToken.count > 32 || !workerToken.allSatisfy({ $0.isLetter || $0.isNumber }) {
            throw ValidationError("--worker-token must be 1 to 32 letters or digits")
        }
        let worker = try Worker(configuration: configuration, postgres: postgres,
                                providers: { providers.provider(named: $0) }, logger: logger,
                                id: workerToken.map { Worker.processID(token: $0) }, admission: admission)
        if let metricsPort, let registry {
            // The operations endpoints start before the worker and stop after it (a ServiceGroup
            // stops in reverse order), so /readyz answers "draining" while the worker drains.
            let probePostgres = PostgresClient(configuration: try options.postgresConfiguration(),
                                               pool: .init(maxConnections: 1, acquireTimeout: .seconds(2), idleHealthCheck: .seconds(5)),
                                               logger: logger)
            var checks = [ReadinessCheck.postgres(probePostgres)]
            services.append(.init(service: probePostgres))
            if let redisConfiguration = try options.redisConfiguration() {
                let redis = RedisClient(configuration: redisConfiguration, pool: .init(maxConnections: 1), logger: logger)
                checks.append(ReadinessCheck(name: "redis") { _ = try await redis.command(["PING"]) })
                services.append(.init(service: redis))
            }
            let probe = ReadinessProbe(checks: checks, draining: { worker.isDraining })
            services.append(.init(service: OpsServer.application(
                configuration: .init(host: metricsHost, port: metricsPort), registry: registry, readiness: probe, logger: logger)))
            var sampler = QueueSampler.Configuration()
            if let queueSampleSeconds {
                guard queueSampleSeconds >= 1 else { throw ValidationError("--queue-sample-seconds must be at least 1") }
                sampler.interval = .milliseconds(Int(queueSampleSeconds * 1000))
            }
            services.append(.init(service: QueueSampler(configuration: sampler, postgres: try options.postgresConfiguration(), logger: logger)))
        }
        services.append(.init(service: worker))
        if webhooks {
            // Listed last, so it stops first and the HTTP client and the pool outlive it.
            let dispatcher = try WebhookDispatcher(configuration: try webhookConfiguration(), store: JobStore(postgres: postgres),
                                                   http: http, logger: logger)
            services.append(.init(service: dispatcher))
        }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as WorkerError where error.code == .invalidConfiguration {
            // A worker that cannot enforce its configuration must not run, and restarting it
            // would not help: exit with EX_CONFIG, which the supervisor does not restart.
            logger.critical("cannot start: \(error.message)")
            throw ExitCode(WorkerSupervisor.configurationExitCode)
        } catch let error as WorkerError where error.code == .limiter {
            // Limits are configured and their Redis does not answer: the worker must not run
            // without it, but the outage may be brief (a failover, a restart). Exit with
            // EX_UNAVAILABLE, which the supervisor restarts with backoff.
            logger.error("cannot start: \(error.message); exiting to be restarted")
            throw ExitCode(WorkerSupervisor.unavailableExitCode)
        }
    }
}
