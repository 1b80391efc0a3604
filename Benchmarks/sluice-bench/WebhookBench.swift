import ArgumentParser
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Sluice
import SluicePostgres
import SluiceSupport

/// `sluice-bench webhooks`: webhook delivery through real `sluice worker` processes to a
/// Hummingbird receiver in this process (127.0.0.1, answers 204 at once): deliveries per
/// second from a full outbox, latency from terminal state to receipt at a steady rate, and the
/// end-to-end echo throughput with webhooks on and off.
struct WebhookBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhooks", abstract: "Webhook delivery throughput and latency, e2e throughput with webhooks on/off.")

    @Option(help: "Deliveries for the throughput run.") var deliveries: Int = 20_000
    @Option(help: "Jobs for the end-to-end on/off runs.") var jobs: Int = 50_000
    @Option(help: "Jobs per second for the latency run.") var rate: Int = 200
    @Option(help: "Seconds of steady load for the latency run.") var seconds: Int = 10
    @Option(help: "Only these sections (throughput,latency,e2e).") var only: String?

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        guard let base = ProcessInfo.processInfo.environment["SLUICE_BENCH_DATABASE_URL"],
              let bin = ProcessInfo.processInfo.environment["SLUICE_BIN_DIR"] else {
            throw ValidationError("run through scripts/bench webhooks")
        }
        let sections = Set((only ?? "throughput,latency,e2e").split(separator: ",").map(String.init))
        let bench = Bench(base: base, bin: bin, logger: logger)
        let receiver = BenchReceiver()
        try await receiver.run(logger: logger) { url in
            if sections.contains("throughput") { try await Self.throughput(bench, receiver, url: url, count: deliveries) }
            if sections.contains("latency") { try await Self.latency(bench, receiver, url: url, rate: rate, seconds: seconds) }
            if sections.contains("e2e") {
                // Interleaved, so drift of the machine affects both alike.
                for round in 1...2 {
                    for mode in ["no outbox trigger", "webhooks off", "webhooks on"] {
                        try await Self.endToEnd(bench, receiver, url: url, jobs: jobs, mode: mode, round: round)
                    }
                }
            }
        }
    }

    static func workerEnvironment() -> [String] { ["--webhook-allow", "127.0.0.1/32"] }

    static func prepare(_ db: (url: String, postgres: PostgresClient, client: SluiceClient), url: String?) async throws {
        _ = try await db.postgres.query("UPDATE sluice.settings SET allow_http_webhooks = true")
        _ = try await db.postgres.query("INSERT INTO sluice.tenants (id, webhook_url, max_concurrency) VALUES ('hooked', $1, 10000)", [url])
        _ = try await db.postgres.query(
            "INSERT INTO sluice.tenant_secrets (tenant, secret) VALUES ('hooked', $1)",
            ["whsec_" + Data((0..<32).map { UInt8($0) }).base64EncodedString()])
    }

    /// A full outbox (jobs finished by workers without dispatchers), then one worker process
    /// delivering it.
    static func throughput(_ bench: Bench, _ receiver: BenchReceiver, url: String, count: Int) async throws {
        let db = try await bench.freshDatabase("webhooks")
        try await prepare(db, url: url + "/hook")
        for offset in stride(from: 0, to: count, by: 10_000) {
            _ = try await db.client.enqueue(batch: (offset..<min(offset + 10_000, count)).map { bench.spec("hooked", $0) })
        }
        let runners = try bench.startWorkers(url: db.url, processes: 1, extra: ["--no-webhooks"])
        while try await bench.count(db.postgres, "SELECT count(*) FROM sluice.webhook_deliveries") < count {
            try await Task.sleep(for: .milliseconds(500))
        }
        bench.stop(runners)
        _ = try await db.postgres.query("VACUUM ANALYZE sluice.webhook_deliveries")
        receiver.reset()
        for concurrency in [64, 256] {
            _ = try await db.postgres.query("UPDATE sluice.webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(), delivered_at = NULL")
            receiver.reset()
            let dispatcher = try bench.startWorkers(url: db.url, processes: 1,
                                                    extra: workerEnvironment() + ["--webhook-concurrency", "\(concurrency)"])
            while try await bench.count(db.postgres, "SELECT count(*) FROM sluice.webhook_deliveries WHERE state <> 'delivered'") > 0 {
                try await Task.sleep(for: .milliseconds(200))
            }
            bench.stop(dispatcher)
            let times = receiver.times.current.map(\.1).sorted()
            let span = (times.last ?? 0) - (times.first ?? 0)
            print(String(format: "webhook deliveries, 1 worker process, --webhook-concurrency %d: %d in %.2f s = %7.0f deliveries/s (receiver 204, 127.0.0.1)",
                         concurrency, times.count, span, Double(times.count) / max(span, 0.001)))
        }
        await db.client.shutdown()
    }

    /// Jobs at a steady rate through 2 worker processes with dispatchers; latency from the
    /// job's finished_at to the receiver's receipt (one machine, one clock).
    static func latency(_ bench: Bench, _ receiver: BenchReceiver, url: String, rate: Int, seconds: Int) async throws {
        let db = try await bench.freshDatabase("webhooklat")
        try await prepare(db, url: url + "/hook")
        let workers = try bench.startWorkers(url: db.url, processes: 2, extra: workerEnvironment())
        try await Task.sleep(for: .seconds(2))
        receiver.reset()
        _ = try await bench.steady(db, tenant: "hooked", lane: .normal, rate: rate, seconds: seconds)
        let total = rate * seconds
        for _ in 0..<600 where receiver.times.current.count < total { try await Task.sleep(for: .milliseconds(100)) }
        bench.stop(workers)
        let received = receiver.times.current
        let rows = try await db.postgres.query("""
            SELECT 'msg_' || d.id AS webhook_id, extract(epoch FROM j.finished_at)::float8 AS finished
              FROM sluice.webhook_deliveries d JOIN sluice.jobs j ON j.id = d.job_id
            """)
        var finished: [String: Double] = [:]
        for row in rows.rows { finished[try row.decode(String.self, at: 0)] = try row.decode(Double.self, at: 1) }
        let samples = received.compactMap { id, at in finished[id].map { (at - $0) * 1000 } }
        print("webhook latency (job finished -> receiver), \(rate) jobs/s for \(seconds) s, 2 processes: \(Stats(samples: samples))")
        await db.client.shutdown()
    }

    /// The queue benchmark's end-to-end run (echo, 0 ms), dispatchers running: the tenant with a
    /// webhook ("webhooks on"), without ("webhooks off": the outbox trigger runs and writes
    /// nothing), and without the outbox trigger at all (the schema before webhooks).
    static func endToEnd(_ bench: Bench, _ receiver: BenchReceiver, url: String, jobs: Int, mode: String, round: Int) async throws {
        let webhooks = mode == "webhooks on"
        let db = try await bench.freshDatabase("webhooke2e")
        try await prepare(db, url: webhooks ? url + "/hook" : nil)
        if mode == "no outbox trigger" {
            _ = try await db.postgres.query("ALTER TABLE sluice.jobs DISABLE TRIGGER jobs_webhooks")
        }
        for offset in stride(from: 0, to: jobs, by: 10_000) {
            _ = try await db.client.enqueue(batch: (offset..<min(offset + 10_000, jobs)).map { bench.spec("hooked", $0) })
        }
        _ = try await db.postgres.query("VACUUM ANALYZE sluice.jobs")
        receiver.reset()
        let workers = try bench.startWorkers(url: db.url, processes: 2, extra: workerEnvironment())
        while try await db.postgres.query("SELECT EXISTS (SELECT 1 FROM sluice.jobs WHERE state IN ('queued','running'))")
                .rows[0].decode(Bool.self, at: 0) {
            try await Task.sleep(for: .milliseconds(500))
        }
        let span = try await db.postgres.query(
            "SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8, count(*) FILTER (WHERE state = 'succeeded') FROM sluice.jobs")
        let elapsed = try span.rows[0].decode(Double.self, at: 0)
        let succeeded = try span.rows[0].decode(Int.self, at: 1)
        // With webhooks, wait for the deliveries too (reported, not part of the job throughput).
        if webhooks {
            for _ in 0..<1200 where receiver.times.current.count < jobs { try await Task.sleep(for: .milliseconds(100)) }
        }
        bench.stop(workers)
        print(String(format: "end to end, echo 0 ms, 2 processes x 512 slots, %@ (round %d): %d jobs in %.2f s = %7.0f jobs/s%@",
                     mode, round, succeeded, elapsed, Double(succeeded) / elapsed,
                     webhooks ? ", \(receiver.times.current.count) deliveries received" : ""))
        await db.client.shutdown()
    }
}

/// The benchmark's receiver: records (webhook-id, receipt time) and answers 204.
final class BenchReceiver: Sendable {
    let times = Locked<[(String, Double)]>([])

    func reset() { times.withLock { $0.removeAll(keepingCapacity: true) } }

    func run(logger: Logger, _ body: @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            _ = try await request.body.collect(upTo: 1 << 20)
            let now = Date().timeIntervalSince1970
            let id = request.headers[HTTPField.Name("webhook-id")!] ?? "?"
            self.times.withLock { $0.append((id, now)) }
            return Response(status: .noContent)
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router,
                              configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "bench-receiver", backlog: 4096),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let runner = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw ValidationError("the receiver did not start") }
        do {
            try await body("http://127.0.0.1:\(port)")
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await runner.value
            throw error
        }
        await group.triggerGracefulShutdown()
        _ = try? await runner.value
    }
}
