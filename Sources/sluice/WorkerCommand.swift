import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Sluice
import SluiceHTTP
import SluicePostgres
import SluiceProviders
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

    @Option(name: .long, help: "Lease on a running job in seconds (default 30).")
    var leaseSeconds: Double?

    @Option(name: .long, help: "Seconds in-flight jobs get to finish on SIGTERM (default 30).")
    var graceSeconds: Double?

    @Option(name: .long, help: "Slots kept for interactive jobs and tenants with few jobs running (default: concurrency/20).")
    var interactiveReserve: Int?

    @Option(name: .long, help: "Fallback poll interval in milliseconds (default 1000).")
    var pollMs: Int?

    @Option(name: .long, help: "Most jobs one claim statement takes (default 1000).")
    var claimBatch: Int?

    @Option(name: .long, help: "Most tenants with queued jobs one claim considers; claims take turns over more (default 256).")
    var claimTenantWindow: Int?

    @Option(name: .long, help: "Most outcomes one completion statement writes (default 500).")
    var completionBatch: Int?

    @Option(name: .long, help: "Longest an outcome waits for its completion statement, in milliseconds (default 5).")
    var completionIntervalMs: Int?

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

    @Flag(name: .long, help: .hidden)
    var child = false

    func run() async throws {
        if child {
            try await runWorker()
        } else {
            let count = processes ?? ProcessInfo.processInfo.activeProcessorCount
            guard count >= 1 && count <= 256 else { throw ValidationError("--processes must be from 1 to 256") }
            _ = try workerConfiguration()  // validate before spawning anything
            _ = try webhookConfiguration()
            let code = await WorkerSupervisor(processes: count, childArguments: childArguments(),
                                              logger: try options.makeLogger("sluice.supervisor")).run()
            if code != 0 { throw ExitCode(code) }
        }
    }

    private func childArguments() -> [String] {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if let index = arguments.firstIndex(of: "--processes") {
            arguments.removeSubrange(index...min(index + 1, arguments.count - 1))
        }
        arguments.removeAll { $0.hasPrefix("--processes=") }
        return arguments + ["--child"]
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
        if let pollMs { configuration.pollInterval = .milliseconds(pollMs) }
        if let claimBatch { configuration.maxClaimBatch = claimBatch }
        if let claimTenantWindow { configuration.claimTenantWindow = claimTenantWindow }
        if let completionBatch { configuration.completionBatch = completionBatch }
        if let completionIntervalMs { configuration.completionInterval = .milliseconds(completionIntervalMs) }
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
        let logger = try options.makeLogger("sluice.worker")
        let configuration = try workerConfiguration()
        let providersConfiguration = try ProvidersConfiguration.load(environment: options.environment)
        let prices = try PriceTable(overrides: providersConfiguration.priceOverrides, logger: logger)
        let http = HTTPClient(logger: logger)
        let registry = ProviderRegistry(configuration: providersConfiguration, httpClient: http, priceTable: prices, logger: logger)
        let postgres = PostgresClient(configuration: try options.postgresConfiguration(),
                                      pool: .init(maxConnections: 8), logger: logger)
        let worker = try Worker(configuration: configuration, postgres: postgres,
                                providers: { registry.provider(named: $0) }, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: postgres), .init(service: http), .init(service: worker),
        ]
        if webhooks {
            // Listed last, so it stops first and the HTTP client and the pool outlive it.
            let dispatcher = try WebhookDispatcher(configuration: try webhookConfiguration(), store: JobStore(postgres: postgres),
                                                   http: http, logger: logger)
            services.append(.init(service: dispatcher))
        }
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}
