import ArgumentParser
import Foundation
import Logging
import Sluice
import SluicePostgres

/// `sluice-bench submitters`: many concurrent submitters sharing **one** `SluiceClient` whose
/// pool is much smaller than the number of submitters (the chaos suite's `pool-contention`
/// scenario). Each submitter enqueues its jobs one `enqueue` call at a time (every fifth call a
/// batch of 5 through `enqueue(batch:)`), so calls queue for the pool's connections and for
/// the client's shared commits. Prints one JSON object: jobs acknowledged, calls failed (by
/// error code), and the per-call latency p50/p99/max in ms. An acknowledged job must end up in
/// the store: the caller checks that.
struct SubmittersBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submitters", abstract: "Concurrent submitters on one client with a small pool (used by scripts/chaos).")

    @Option(help: "Database URL (default: $SLUICE_DATABASE_URL).") var databaseURL: String?
    @Option(help: "Tenant of the jobs.") var tenant: String
    @Option(help: "Concurrent submitters (tasks) sharing the client.") var submitters: Int = 200
    @Option(help: "Connections in the client's pool.") var pool: Int = 4
    @Option(help: "Seconds a call waits for a pooled connection before it fails.") var acquireTimeout: Int = 10
    @Option(help: "Jobs per submitter.") var jobs: Int = 25
    @Option(help: "Mock-provider directives put into every prompt (e.g. ttft_ms=300).") var directives: String = ""
    @Option(help: "Provider and model of the jobs.") var provider: String = "openai"
    @Option var model: String = "gpt-4o-mini"

    func validate() throws {
        guard submitters >= 1 else { throw ValidationError("--submitters must be at least 1") }
        guard pool >= 1 else { throw ValidationError("--pool must be at least 1") }
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        guard acquireTimeout >= 1 else { throw ValidationError("--acquire-timeout must be at least 1") }
    }

    private struct Tally: Sendable {
        var acked = 0
        var failures: [String: Int] = [:]
        var latencies: [Double] = []
    }

    func run() async throws {
        var logger = Logger(label: "bench.submitters")
        logger.logLevel = .warning
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["SLUICE_DATABASE_URL"] else {
            throw ValidationError("--database-url or SLUICE_DATABASE_URL is required")
        }
        let client = try SluiceClient(
            configuration: .init(databaseURL: url, pool: .init(maxConnections: pool, acquireTimeout: .seconds(acquireTimeout))),
            logger: logger)
        let suffix = directives.isEmpty ? "" : " [[mock: \(directives)]]"
        let (tenant, provider, model, jobs) = (tenant, provider, model, jobs)
        func spec(_ submitter: Int, _ k: Int) -> JobSpec {
            JobSpec(tenant: tenant, provider: provider, model: model,
                    request: JSONDocument(#"{"messages":[{"role":"user","content":"submitter \#(submitter) job \#(k)\#(suffix)"}]}"#),
                    maxOutputTokens: 64)
        }
        let started = ContinuousClock.now
        let total = await withTaskGroup(of: Tally.self) { group in
            for s in 0..<submitters {
                group.addTask {
                    var tally = Tally()
                    var k = 0
                    var call = 0
                    while k < jobs {
                        let n = call % 5 == 4 ? min(5, jobs - k) : 1
                        let t0 = ContinuousClock.now
                        do {
                            if n == 1 {
                                _ = try await client.enqueue(spec(s, k))
                            } else {
                                _ = try await client.enqueue(batch: (k..<k + n).map { spec(s, $0) })
                            }
                            tally.acked += n
                        } catch let error as SluiceError {
                            tally.failures[error.code.description, default: 0] += 1
                        } catch {
                            tally.failures["\(type(of: error))", default: 0] += 1
                        }
                        tally.latencies.append((ContinuousClock.now - t0).seconds * 1000)
                        k += n
                        call += 1
                    }
                    return tally
                }
            }
            var total = Tally()
            for await t in group {
                total.acked += t.acked
                total.failures.merge(t.failures, uniquingKeysWith: +)
                total.latencies += t.latencies
            }
            return total
        }
        let seconds = (ContinuousClock.now - started).seconds
        await client.shutdown()
        let sorted = total.latencies.sorted()
        func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        let failures = total.failures.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
        print(String(format: #"{"acked":%d,"failed_calls":%d,"failures":{%@},"calls":%d,"seconds":%.2f,"p50_ms":%.1f,"p99_ms":%.1f,"max_ms":%.1f}"#,
                     total.acked, total.failures.values.reduce(0, +), failures, sorted.count, seconds, pct(0.5), pct(0.99), sorted.last ?? 0))
    }
}
