import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Sluice
import SluiceHTTP
import SluicePostgres
import SluiceRedis
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

    @Flag(name: .long, help: .hidden)
    var child = false

    func run() async throws {
        if child {
            try await runWorker()
        } else {
            let count = processes ?? ProcessInfo.processInfo.activeProcessorCount
            guard count >= 1 && count <= 256 else { throw ValidationError("--processes must be from 1 to 256") }
            _ = try workerConfiguration()  // validate before spawning anything
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

    private func runWorker() async throws {
        let logger = try options.makeLogger("sluice.worker")
        let configuration = try workerConfiguration()
        let providersConfiguration = try ProvidersConfiguration.load(environment: options.environment)
        let prices = try PriceTable(overrides: providersConfiguration.priceOverrides, logger: logger)
        let http = HTTPClient(logger: logger)
        let registry = ProviderRegistry(configuration: providersConfiguration, httpClient: http, priceTable: prices, logger: logger)
        let postgres = PostgresClient(configuration: try options.postgresConfiguration(),
                                      pool: .init(maxConnections: 8), logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: postgres), .init(service: http)]
        var limiter: RateLimiter?
        if let redisConfiguration = try options.redisConfiguration() {
            let redis = RedisClient(configuration: redisConfiguration, logger: logger)
            services.append(.init(service: redis))
            limiter = RateLimiter(redis: redis)
        }
        var admissionConfiguration = AdmissionConfiguration()
        admissionConfiguration.fileLimits = providersConfiguration.modelLimits
        for (lane, fraction) in providersConfiguration.laneReserve {
            if let lane = Lane(rawValue: lane) { admissionConfiguration.laneReserve[lane] = fraction }
        }
        let admission = try Admission(
            configuration: admissionConfiguration, limiter: limiter, store: JobStore(postgres: postgres),
            cost: { provider, model, usage in
                let kind = providersConfiguration.provider(named: provider)?.kind.rawValue
                return prices.cost(providers: [provider] + (kind.map { [$0] } ?? []), model: model, usage: usage)
            }, logger: logger)
        let worker = try Worker(configuration: configuration, postgres: postgres,
                                providers: { registry.provider(named: $0) }, logger: logger, admission: admission)
        services.append(.init(service: worker))
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch let error as WorkerError where error.code == .invalidConfiguration || error.code == .limiter {
            // A worker that cannot enforce its configuration must not run, and restarting it
            // would not help: exit with EX_CONFIG, which the supervisor does not restart.
            logger.critical("cannot start: \(error.message)")
            throw ExitCode(WorkerSupervisor.configurationExitCode)
        }
    }
}
