import Foundation
import Logging
import ServiceLifecycle
import Sluice
import SluiceHTTP
import SluiceJSON
import SluiceMockProvider
import SluicePostgres
import SluiceSupport

/// One demo run: set-up, workload, progress, report; and the clean-up that runs however it ends.
final class Demo: Sendable {
    enum Outcome: Sendable { case passed, failed, interrupted }

    let plan: DemoPlan
    let databaseURL: String
    let redisURL: String
    let dir: String
    let cli: SluiceCLI
    let logger: Logger
    let receiver = DemoWebhookReceiver()
    /// What is running, for ``cleanup()``.
    let running = Locked(Running())

    struct Running: Sendable {
        var mock: RunningMockProvider?
        var receiver: ServiceGroup?
        var receiverTask: Task<Void, any Error>?
        var workers: Process?
        var client: SluiceClient?
        var http: HTTPClient?
    }

    init(plan: DemoPlan, databaseURL: String, redisURL: String, sluicePath: String, dir: String) {
        self.plan = plan
        self.databaseURL = databaseURL
        self.redisURL = redisURL
        self.dir = dir
        self.cli = SluiceCLI(path: sluicePath, environment: [
            "SLUICE_DATABASE_URL": databaseURL, "SLUICE_REDIS_URL": redisURL, "SLUICE_CONFIG": dir + "/sluice.yaml",
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        ])
        var logger = Logger(label: "sluice-demo")
        logger.logLevel = .error
        self.logger = logger
    }

    var workerLog: String { dir + "/worker.log" }

    func run() async -> Outcome {
        do {
            return try await execute()
        } catch is CancellationError {
            return .interrupted
        } catch {
            if Task.isCancelled { return .interrupted }
            print("\ndemo failed: \(error)")
            printWorkerLogTail()
            return .failed
        }
    }

    func printWorkerLogTail() {
        guard let log = try? String(contentsOfFile: workerLog, encoding: .utf8), !log.isEmpty else { return }
        print("last lines of the worker log (\(workerLog)):")
        for line in log.split(separator: "\n").suffix(15) { print("  " + line) }
    }

    // MARK: The run

    func execute() async throws -> Outcome {
        let started = ContinuousClock.now
        print("Sluice demo: \(plan.totalJobs) jobs from 3 tenants in all four lanes, 2 worker processes, a mock OpenAI/Anthropic provider")
        print("with realistic latency, rate limits and a 1 % fault rate, and a webhook receiver that checks every signature.\n")

        // The provider and the webhook receiver.
        let mock = try await MockProviderServer.start(configuration: plan.mock, logger: logger)
        running.withLock { $0.mock = mock }
        let (hooks, group, task) = try await receiver.start(logger: logger)
        running.withLock { $0.receiver = group; $0.receiverTask = task }
        print("mock provider on \(mock.baseURL.absoluteString) (OpenAI at /v1, Anthropic at /v1/messages); webhook receiver on \(hooks)")
        try """
            # Written by the demo: both providers point at the mock (the keys are the mock's, not real ones).
            providers:
              - {name: openai, kind: openai, base_url: "\(mock.openAIBaseURL.absoluteString)", api_keys: [sk-demo-openai]}
              - {name: anthropic, kind: anthropic, base_url: "\(mock.baseURL.absoluteString)", api_keys: [sk-ant-demo]}

            """.write(toFile: dir + "/sluice.yaml", atomically: true, encoding: .utf8)

        // Schema, tenants and limits, with the operator's commands.
        print("\n1. Schema")
        try cli.run(["migrate"])
        let postgres = PostgresClient(configuration: try PostgresConfiguration(url: databaseURL), pool: .init(maxConnections: 4), logger: logger)
        let client = SluiceClient(postgres: postgres, logger: logger)
        running.withLock { $0.client = client }
        print("  (demo only: webhooks over plain http to 127.0.0.1)")
        _ = try await postgres.query("UPDATE sluice.settings SET allow_http_webhooks = true", [])

        print("\n2. Tenants, plans and provider limits")
        for tenant in plan.tenants {
            print("  \(tenant.id): \(tenant.story)")
            let output = try cli.run(["tenants", "create", tenant.id] + tenant.flags + ["--webhook-url", "\(hooks)/hooks/\(tenant.id)", "--json"])
            guard case .object(let fields)? = try? JSONValue.parse(Array(output.utf8)),
                  case .string(let secret)? = fields["secret"] else {
                throw DemoError("sluice tenants create --json printed no secret")
            }
            try receiver.trust(tenant: tenant.id, secret: secret)
        }
        for limits in plan.modelLimits { try cli.run(["limits", "set"] + limits) }

        print("\n3. Workers")
        let metricsPort = try Self.freePortPair()
        let workers = try cli.startWorker([
            "--processes", "\(plan.processes)", "--concurrency", "\(plan.concurrency)", "--metrics-port", "\(metricsPort)",
            "--webhook-allow", "127.0.0.1/32", "--log-format", "json",
        ], logPath: workerLog)
        running.withLock { $0.workers = workers }
        let http = HTTPClient(logger: logger)
        running.withLock { $0.http = http }
        let ports = (0..<plan.processes).map { metricsPort + $0 }
        try await waitReady(http, ports: ports, workers: workers)
        print("  ready: /metrics, /healthz and /readyz on " + ports.map { "http://127.0.0.1:\($0)" }.joined(separator: ", ")
              + "; log: \(workerLog)")

        print("\n4. Workload (\(plan.totalJobs) jobs)")
        let producer = Task { try await self.produce(client) }
        let outcome = try await watch(postgres, producer: producer, started: started)
        let metrics = DemoMetrics(http: http, ports: ports)
        let waits = await metrics.sum("sluice_rate_limit_waits_total", by: "limit")
        let stats = mock.stats

        print("\n5. Stopping the workers (SIGTERM: they finish what they run, then exit)")
        await SluiceCLI.stop(workers)
        print("  workers exited with status \(workers.terminationStatus)")
        let ok = try await report(postgres, outcome: outcome, waits: waits, mock: stats)
        return ok ? .passed : .failed
    }

    /// Enqueues the waves: backlogs at once, steady traffic at its rate.
    func produce(_ client: SluiceClient) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, wave) in plan.waves.enumerated() {
                group.addTask {
                    var rng = SplitMix64(seed: 0x51_1C3 &+ UInt64(index))
                    let specs = (0..<wave.count).map { wave.make($0, &rng) }
                    if wave.perSecond == 0 {
                        for start in stride(from: 0, to: specs.count, by: 500) {
                            _ = try await client.enqueue(batch: Array(specs[start..<min(start + 500, specs.count)]))
                        }
                    } else {
                        let tick = Duration.seconds(1) / wave.perSecond
                        let clock = ContinuousClock()
                        var next = clock.now
                        for spec in specs {
                            _ = try await client.enqueue(spec)
                            next += tick
                            try await clock.sleep(until: next)
                        }
                    }
                    return specs.count
                }
            }
            return try await group.reduce(0, +)
        }
    }

    struct WatchOutcome {
        var finished: Bool
        var elapsed: Double
        var budgetHeldAt: Double?
        var budgetRaisedAt: Double?
    }

    /// Shows progress until every job is terminal (or the deadline); handles the budget hold as an operator would.
    func watch(_ postgres: PostgresClient, producer: Task<Int, any Error>, started: ContinuousClock.Instant) async throws -> WatchOutcome {
        var progress = DemoProgress()
        var outcome = WatchOutcome(finished: false, elapsed: 0)
        var lastTerminal = 0, lastTime = ContinuousClock.now, throughput = 0.0
        let planned = plan.totalJobs
        defer { progress.erase() }
        while true {
            try Task.checkCancellation()
            let now = ContinuousClock.now
            let elapsed = (now - started).seconds
            let snapshot = try await DemoProgress.snapshot(postgres)
            let dt = (now - lastTime).seconds
            if dt > 0 {
                throughput = 0.5 * throughput + 0.5 * Double(snapshot.terminal - lastTerminal) / dt
            }
            lastTerminal = snapshot.terminal
            lastTime = now
            // The budget tenant's hold, and the operator raising its budget a few seconds later.
            let held = try await postgres.query(
                "SELECT coalesce(hold_reason, 'held') FROM sluice.tenants WHERE id = $1 AND held_until > now()", [plan.budgetTenant]).rows
            if let row = held.first, outcome.budgetHeldAt == nil {
                outcome.budgetHeldAt = elapsed
                progress.event(String(format: "  %5.1f s  %@ is held: %@ (its queued jobs wait; `sluice jobs show` gives the reason)",
                                      elapsed, plan.budgetTenant as NSString, try row.decode(String.self, at: 0) as NSString))
            }
            if let heldAt = outcome.budgetHeldAt, outcome.budgetRaisedAt == nil, elapsed - heldAt >= 3 {
                outcome.budgetRaisedAt = elapsed
                progress.event(String(format: "  %5.1f s  the operator raises the budget; the hold is released at once:", elapsed))
                try cli.run(["tenants", "set", plan.budgetTenant, "--daily-tokens", "\(plan.raisedBudget)"])
            }
            let webhooks = receiver.counts.current.verified
            let enqueued = snapshot.total
            progress.draw(snapshot, elapsed: elapsed, enqueued: enqueued, planned: planned, throughput: throughput, webhooks: webhooks)
            if enqueued >= planned && snapshot.terminal >= planned {
                _ = try await producer.value
                outcome.finished = true
                outcome.elapsed = elapsed
                break
            }
            if now - started > plan.deadline {
                outcome.elapsed = elapsed
                producer.cancel()
                progress.event("  the deadline (\(plan.deadline)) passed with \(planned - snapshot.terminal) jobs unfinished")
                try await printUnfinished(postgres)
                break
            }
            try await Task.sleep(for: .seconds(1))
        }
        progress.erase()
        print(String(format: "  all %d jobs finished after %.1f s", planned, outcome.elapsed))
        // Deliveries still in flight: give them a few seconds.
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let pending = try await postgres.query(
                "SELECT count(*)::int8 FROM sluice.webhook_deliveries WHERE state = 'pending'", []).rows[0].decode(Int.self, at: 0)
            if pending == 0 { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        return outcome
    }

    /// The jobs still queued or running when the deadline passed, with what they wait for, so a
    /// failed run says why (a retry's backoff, a hold, a breaker) without rerunning it.
    func printUnfinished(_ postgres: PostgresClient) async throws {
        let rows = try await postgres.query("""
            SELECT tenant, lane::text, state::text, attempt, max_attempts,
                   round(extract(epoch FROM run_at - now())::numeric, 1)::float8,
                   coalesce(last_error_class, '-'), left(coalesce(last_error, '-'), 120)
              FROM sluice.jobs WHERE state IN ('queued', 'running') ORDER BY run_at LIMIT 20
            """, []).rows
        print("  unfinished jobs (first 20 by run_at): tenant lane state attempt/max, run_at from now, last error")
        for row in rows {
            print("    \(try row.decode(String.self, at: 0)) \(try row.decode(String.self, at: 1)) \(try row.decode(String.self, at: 2)) "
                  + "\(try row.decode(Int.self, at: 3))/\(try row.decode(Int.self, at: 4)) "
                  + String(format: "%+.1f s ", try row.decode(Double.self, at: 5))
                  + "\(try row.decode(String.self, at: 6)): \(try row.decode(String.self, at: 7))")
        }
    }

    func waitReady(_ http: HTTPClient, ports: [Int], workers: Process) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        var ready = Set<Int>()
        while ready.count < ports.count {
            guard workers.isRunning else { throw DemoError("sluice worker exited with status \(workers.terminationStatus)") }
            guard ContinuousClock.now < deadline else { throw DemoError("the workers were not ready within 60 s") }
            for port in ports where !ready.contains(port) {
                if let response = try? await http.execute(HTTPRequest(url: "http://127.0.0.1:\(port)/readyz")), response.status == 200 {
                    ready.insert(port)
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Two consecutive free loopback ports (the supervisor gives process i the port P+i).
    static func freePortPair() throws -> Int {
        for _ in 0..<50 {
            let port = Int.random(in: 20_000...60_000)
            if portIsFree(port) && portIsFree(port + 1) { return port }
        }
        throw DemoError("no two consecutive free ports for /metrics")
    }

    static func portIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    // MARK: Clean-up

    /// Stops whatever is still running: workers (SIGTERM, then SIGKILL), the receiver, the mock, pools.
    func cleanup() async {
        let state = running.withLock { state -> Running in
            let copy = state
            state = Running()
            return copy
        }
        if let workers = state.workers { await SluiceCLI.stop(workers) }
        if let group = state.receiver { await group.triggerGracefulShutdown() }
        _ = await state.receiverTask?.result
        if let mock = state.mock { await mock.stop() }
        if let client = state.client { await client.shutdown() }
        if let http = state.http { await http.shutdown() }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
