import ArgumentParser
import Foundation
import Sluice
import SluiceJSON

/// `sluice stats [--watch [D]] [--json]`.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Queue depth by lane and tenant, rates, dead letters, workers and webhooks.")
    @OptionGroup var options: GlobalOptions
    @Flag(name: .long, help: "Print JSON (with --watch, one line per refresh).") var json = false
    @Flag(name: .long, help: "Refresh until interrupted.") var watch = false
    @Option(name: .long, help: "Refresh interval with --watch (default 2s).") var interval: String = "2s"

    func run() async throws {
        let interval = try Parse.duration(self.interval, option: "--interval")
        guard interval >= .milliseconds(100) else { throw UsageError("--interval must be at least 100ms") }
        let json = self.json, watch = self.watch
        try await options.withStore("sluice.stats") { store, _ in
            repeat {
                let stats = try await store.stats()
                if json {
                    Output.line { StatsCommand.write(stats, to: &$0) }
                } else {
                    if watch && Output.stdoutIsTerminal { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                    StatsCommand.printText(stats)
                }
                if watch { try await Task.sleep(for: interval) }
            } while watch
        }
    }

    static func write(_ s: QueueStats, to w: inout JSONWriter) {
        w.beginObject()
        w.put("at", Date())
        w.put("queued", s.queued)
        w.put("running", s.running)
        w.put("succeeded", s.succeeded)
        w.put("dead", s.dead)
        w.put("cancelled", s.cancelled)
        w.put("oldest_queued_seconds", s.oldestQueuedSeconds)
        w.key("by_lane")
        w.beginObject()
        for lane in s.byLane {
            w.key(lane.lane)
            w.beginObject()
            w.put("queued", lane.queued)
            w.put("running", lane.running)
            w.endObject()
        }
        w.endObject()
        w.key("by_tenant")
        w.beginObject()
        for tenant in s.byTenant {
            w.key(tenant.tenant)
            w.beginObject()
            w.put("queued", tenant.queued)
            w.put("running", tenant.running)
            w.endObject()
        }
        w.endObject()
        w.key("rates")
        w.beginObject()
        for (name, counts) in [("succeeded", s.succeededLast), ("dead", s.deadLast)] {
            w.key(name)
            w.beginObject()
            w.put("1m", counts.one)
            w.put("5m", counts.five)
            w.put("15m", counts.fifteen)
            w.endObject()
        }
        w.endObject()
        w.put("dead_letters", s.deadLetters)
        w.key("workers")
        w.beginObject()
        w.put("live", s.workers)
        w.put("slots", s.workerSlots)
        w.endObject()
        w.key("webhooks")
        w.beginObject()
        w.put("pending", s.webhooksPending)
        w.put("failed", s.webhooksFailed)
        w.endObject()
        w.endObject()
    }

    static func printText(_ s: QueueStats) {
        print("jobs      queued \(s.queued)  running \(s.running)  succeeded \(s.succeeded)  dead \(s.dead)  cancelled \(s.cancelled)")
        print("oldest    \(s.oldestQueuedSeconds.map { String(format: "%.1f s", $0) } ?? "-") queued")
        print("lanes     " + s.byLane.map { "\($0.lane) \($0.queued)/\($0.running)" }.joined(separator: "  ") + "   (queued/running)")
        if !s.byTenant.isEmpty {
            print("tenants   " + s.byTenant.prefix(10).map { "\($0.tenant) \($0.queued)/\($0.running)" }.joined(separator: "  "))
        }
        print(String(format: "rate      succeeded %.1f / %.1f / %.1f per min, dead %.1f / %.1f / %.1f per min (1, 5, 15 min)",
                     Double(s.succeededLast.one), Double(s.succeededLast.five) / 5, Double(s.succeededLast.fifteen) / 15,
                     Double(s.deadLast.one), Double(s.deadLast.five) / 5, Double(s.deadLast.fifteen) / 15))
        print("dlq       \(s.deadLetters) dead letters not replayed")
        print("workers   \(s.workers) live, \(s.workerSlots) slots")
        print("webhooks  \(s.webhooksPending) pending, \(s.webhooksFailed) failed")
    }
}
