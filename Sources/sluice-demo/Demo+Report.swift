import Foundation
import SluiceMockProvider
import SluiceJSON
import SluicePostgres
import SluiceSupport

extension Demo {
    /// Prints the final report; returns whether the run kept its promises (every job terminal,
    /// every succeeded job with its result, every webhook signature valid).
    func report(_ postgres: PostgresClient, outcome: WatchOutcome, waits: [String: Double], mock: MockProviderStats) async throws -> Bool {
        let report = DemoReport(postgres: postgres)
        let totals = try await report.totals()
        let count = { (state: String) in totals.states[state] ?? 0 }
        let terminal = count("succeeded") + count("dead") + count("cancelled")
        let unfinished = count("queued") + count("running")
        let lost = plan.totalJobs - terminal - unfinished
        print("\n== Report ==")
        print(String(format: "jobs        %d enqueued: %d succeeded, %d dead, %d cancelled, %d unfinished, %d lost",
                     plan.totalJobs, count("succeeded"), count("dead"), count("cancelled"), unfinished, max(lost, 0)))
        print(String(format: "throughput  %.1f jobs/s (first enqueue to last finish: %.1f s)",
                     totals.span > 0 ? Double(terminal) / totals.span : 0, totals.span))

        print("\npickup (enqueue to first start, including waits for limits and budgets)")
        print("  lane           jobs      p50      p95      p99")
        for (lane, jobs, p50, p95, p99) in try await report.pickup() {
            print("  " + pad(lane, 12) + String(format: " %6d ", jobs) + [p50, p95, p99].map { pad(Self.format(seconds: $0), 8, right: true) }.joined(separator: " "))
        }
        print("\ntime to first token and call latency (streamed calls have a TTFT)")
        print("  model                          calls  TTFT p50  TTFT p99   latency p50  latency p99")
        let latencies = Dictionary(try await report.latency("latency_ms").map { ($0.0, $0) }, uniquingKeysWith: { a, _ in a })
        for (model, calls, p50, _, p99) in try await report.latency("ttft_ms") {
            let latency = latencies[model]
            print("  " + pad(model, 30) + String(format: " %6d ", latency?.1 ?? calls)
                  + pad(calls > 0 ? Self.format(seconds: p50 / 1000) : "-", 9, right: true) + " "
                  + pad(calls > 0 ? Self.format(seconds: p99 / 1000) : "-", 9, right: true) + "   "
                  + pad(Self.format(seconds: (latency?.2 ?? 0) / 1000), 11, right: true) + "  "
                  + pad(Self.format(seconds: (latency?.4 ?? 0) / 1000), 11, right: true))
        }

        print("\ntokens and cost per tenant")
        print("  tenant      succeeded  retried  dead   input tokens  output tokens    cost USD")
        var totalCost = 0.0
        for u in try await report.usage() {
            totalCost += u.costUSD
            print("  " + pad(u.tenant, 10) + String(format: " %9d  %7d  %4d  %13d  %13d  %10.4f", u.succeeded, u.retried, u.dead,
                                                     u.inputTokens, u.outputTokens, u.costUSD))
        }
        print(String(format: "  total cost $%.4f (list prices of sluice's price table)", totalCost))

        print("\nrate limits")
        let received429 = mock.requestsByStatus["429"] ?? 0
        print("  429s received from the provider: \(received429) of \(mock.requestsTotal) calls"
              + " (\(mock.rateLimited) from its own limits, the rest injected by the demo's fault directives)")
        let totalWaits = Int(waits.values.reduce(0, +))
        let byLimit = waits.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value))" }.joined(separator: ", ")
        print("  429s avoided: \(totalWaits) times a claimed job was put back until Sluice's buckets, budgets, cooldowns or"
              + " breakers let it start" + (byLimit.isEmpty ? "" : " (\(byLimit))") + ", none of them using an attempt")
        if let held = outcome.budgetHeldAt {
            print(String(format: "  %@ reached its daily token budget at %.1f s and was held", plan.budgetTenant as NSString, held)
                  + (outcome.budgetRaisedAt.map { String(format: "; raised at %.1f s, its jobs then ran", $0) } ?? ""))
        } else {
            print("  \(plan.budgetTenant) did not reach its daily token budget in this run")
        }

        print("\ndead letters (failures that retrying cannot fix, kept for inspection and replay)")
        let dead = try await report.deadLetters()
        if dead.isEmpty { print("  none") }
        for d in dead { print("  " + pad(d.tenant, 10) + " " + pad(d.errorClass, 18) + " \(d.count)") }
        if let first = dead.first {
            print("  inspect and replay them (replay makes a fresh job linked to the dead one):")
            print("    sluice dlq list --tenant \(first.tenant) --error-class \(first.errorClass)")
            print("    sluice dlq replay --tenant \(first.tenant) --error-class \(first.errorClass) --dry-run")
            let dry = try cli.run(["dlq", "replay", "--tenant", first.tenant, "--error-class", first.errorClass, "--dry-run", "--json"], show: false)
            if case .object(let fields)? = try? JSONValue.parse(Array(dry.utf8)),
               case .number(let matched)? = fields["matched"] {
                print("    (ran it here: \(Int(matched)) would be replayed; without --dry-run they are queued again)")
            }
        }

        print("\nwebhooks")
        let counts = receiver.counts.current
        let states = try await report.webhookStates()
        print("  deliveries: \(states["delivered"] ?? 0) delivered, \(states["pending"] ?? 0) pending, \(states["failed"] ?? 0) failed")
        print("  receiver: \(counts.received) requests, \(counts.verified) signatures verified, \(counts.badSignature) invalid, "
              + "\(counts.repeated) repeats of a delivery already received")

        var problems: [String] = []
        if lost > 0 { problems.append("\(lost) jobs lost") }
        if unfinished > 0 || !outcome.finished { problems.append("\(unfinished) jobs unfinished at the deadline") }
        if totals.lostResults > 0 { problems.append("\(totals.lostResults) succeeded jobs without a result") }
        if counts.badSignature > 0 { problems.append("\(counts.badSignature) webhook signatures did not verify") }
        if counts.verified == 0 { problems.append("no webhook arrived") }
        if count("succeeded") == 0 { problems.append("no job succeeded") }
        print("")
        if problems.isEmpty {
            print("OK: every job reached a terminal state with its result, every webhook signature verified.")
        } else {
            print("FAILED: " + problems.joined(separator: "; "))
            printWorkerLogTail()
        }
        return problems.isEmpty
    }

    static func format(seconds: Double) -> String {
        if seconds < 1 { return String(format: "%.0f ms", seconds * 1000) }
        return String(format: "%.2f s", seconds)
    }

    func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        s.count >= width ? s : (right ? String(repeating: " ", count: width - s.count) + s : s + String(repeating: " ", count: width - s.count))
    }
}
