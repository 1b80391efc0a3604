import ArgumentParser
import Foundation
import Logging
import Sluice
import SluiceHTTP
import SluiceJSON
import SluicePostgres

/// `sluice-bench inflight`: one real `sluice worker` process (under its supervisor) running
/// 10,000 jobs at once against the mock provider (a separate process), each a streamed
/// response of about 2 s. Reports whether all of them were in flight at the same moment (the
/// mock's peak of concurrent streams), the worker's peak RSS and the CPU it used.
struct InFlightBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inflight", abstract: "10,000 concurrent streamed calls through one worker process.")

    @Option(help: "Jobs (and worker slots).") var jobs: Int = 10_000
    @Option(help: "Output tokens per response, streamed at 20 tokens/s (40 = 2 s).") var tokens: Int = 40

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        guard let base = ProcessInfo.processInfo.environment["SLUICE_BENCH_DATABASE_URL"],
              let bin = ProcessInfo.processInfo.environment["SLUICE_BIN_DIR"] else {
            throw ValidationError("run through scripts/bench inflight")
        }
        let bench = Bench(base: base, bin: bin, logger: logger)
        let mock = try ProvidersBench.MockChild.start()
        defer { mock.stop() }
        let mockBase = String(mock.openAIBaseURL.dropLast(3))
        let db = try await bench.freshDatabase("inflight")
        try await db.client.register(providers: [RegisteredProvider(name: "openai", kind: .openai, models: ["gpt-4o-mini"])])
        for offset in stride(from: 0, to: jobs, by: 5_000) {
            _ = try await db.client.enqueue(batch: (offset..<min(offset + 5_000, jobs)).map { i in
                JobSpec(tenant: "inflight", lane: .normal, provider: "openai", model: "gpt-4o-mini",
                        request: JSONDocument(#"{"messages":[{"role":"user","content":"job \#(i) [[mock: tokens=\#(tokens),tps=20]]"}]}"#),
                        maxOutputTokens: 256, stream: true)
            })
        }
        _ = try await db.postgres.query("UPDATE sluice.tenants SET max_concurrency = \(jobs)")
        _ = try await db.postgres.query("VACUUM ANALYZE sluice.jobs")
        let config = NSTemporaryDirectory() + "bench-inflight-\(UUID().uuidString).yaml"
        try "providers:\n  - {name: openai, kind: openai, base_url: \"\(mock.openAIBaseURL)\", api_keys: [sk-bench]}\n"
            .write(toFile: config, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: config) }

        let http = HTTPClient(logger: logger)
        let start = ContinuousClock.now
        let workers = try bench.startWorkers(url: db.url, processes: 1, concurrency: jobs,
                                             extra: ["--config", config, "--interactive-reserve", "0"])
        var peakRunning = 0, peakRSS = 0, allStartedAt: Double?
        var cpuAtStart: Double?
        var cpu = 0.0
        var done = 0
        while done < jobs && ContinuousClock.now - start < .seconds(300) {
            try await Task.sleep(for: .milliseconds(250))
            let row = try await db.postgres.query(
                "SELECT count(*) FILTER (WHERE state = 'running')::int8, count(*) FILTER (WHERE state IN ('succeeded','dead'))::int8, count(*) FILTER (WHERE attempt > 0 OR state <> 'queued')::int8 FROM sluice.jobs").rows[0]
            let running = try row.decode(Int.self, at: 0)
            done = try row.decode(Int.self, at: 1)
            let started = try row.decode(Int.self, at: 2)
            peakRunning = max(peakRunning, running)
            if started >= jobs, allStartedAt == nil { allStartedAt = (ContinuousClock.now - start).seconds }
            let usage = Self.treeUsage(workers.processIdentifier)
            peakRSS = max(peakRSS, usage.rssKiB)
            if cpuAtStart == nil { cpuAtStart = usage.cpuSeconds }
            cpu = usage.cpuSeconds
        }
        let elapsed = (ContinuousClock.now - start).seconds
        var peakStreams = -1
        if let response = try? await http.execute(HTTPRequest(url: mockBase + "/admin/stats")),
           let body = try? await response.body.collect(upTo: 1 << 20),
           case .object(let fields)? = try? JSONValue.parse(body), case .number(let peak)? = fields["peak_concurrent_streams"] {
            peakStreams = Int(peak)
        }
        bench.stop(workers)
        await http.shutdown()
        let succeeded = try await bench.count(db.postgres, "SELECT count(*) FROM sluice.jobs WHERE state = 'succeeded'")
        print(String(format: """
            inflight: %d jobs of ~%.0f s streamed responses, 1 worker process with %d slots: %d succeeded in %.1f s; \
            all started after %@; peak running (store) %d; peak concurrent streams at the mock %d (%@); \
            worker peak RSS %.0f MiB; worker CPU %.1f s (%.0f %% of one core over the run)
            """, jobs, Double(tokens) / 20, jobs, succeeded, elapsed, allStartedAt.map { String(format: "%.1f s", $0) } ?? "never",
                     peakRunning, peakStreams, peakStreams == jobs ? "all in flight at once" : "not all at once",
                     Double(peakRSS) / 1024, cpu - (cpuAtStart ?? 0), (cpu - (cpuAtStart ?? 0)) / elapsed * 100))
        await db.client.shutdown()
    }

    /// RSS (KiB) and CPU seconds of a process and its children (the supervisor and its worker).
    static func treeUsage(_ pid: Int32) -> (rssKiB: Int, cpuSeconds: Double) {
        var pids = [pid]
        if let children = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) {
            pids += children.split(separator: " ").compactMap { Int32($0) }
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var rss = 0, cpu = 0.0
        for p in pids {
            if let status = try? String(contentsOfFile: "/proc/\(p)/status", encoding: .utf8),
               let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
               let value = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap({ Int($0) }) {
                rss += value
            }
            if let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
               let close = stat.lastIndex(of: ")") {
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                // After the command: state(0) ppid(1) … utime(11) stime(12).
                if fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) { cpu += (user + system) / ticks }
            }
        }
        return (rss, cpu)
    }
}
