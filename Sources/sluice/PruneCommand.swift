import ArgumentParser
import Foundation
import Sluice
import SluiceJSON
import SluiceWorker

/// `sluice prune`: the retention the workers run, on demand.
struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Delete finished jobs, dead letters and webhook deliveries past their retention now.")
    @OptionGroup var options: GlobalOptions
    @Option(name: .long, help: "Finished jobs older than this (default 7d, as the workers).") var retention: String = "7d"
    @Option(name: .long, help: "Dead jobs and dead letters older than this (default 30d).") var deadRetention: String = "30d"
    @Option(name: .long, help: "Delivered and failed webhook deliveries older than this (default 7d).") var webhookRetention: String = "7d"
    @Flag(name: .long, help: "Print JSON: {\"jobs\", \"webhook_deliveries\"}.") var json = false

    func run() async throws {
        let retention = try Parse.duration(retention, option: "--retention")
        let deadRetention = try Parse.duration(deadRetention, option: "--dead-retention")
        let webhookRetention = try Parse.duration(webhookRetention, option: "--webhook-retention")
        let (jobs, deliveries) = try await options.withStore("sluice.prune") { store, _ in
            var jobs = 0
            while true {
                guard let n = try await store.pruneBatch(retention: retention, deadRetention: deadRetention, limit: 1000) else {
                    throw PruneBusy()
                }
                jobs += n
                if n < 1000 { break }
            }
            var deliveries = 0
            while true {
                let n = try await store.pruneWebhooks(retention: webhookRetention)
                deliveries += n
                if n < 1000 { break }
            }
            return (jobs, deliveries)
        }
        if json {
            Output.line { w in
                w.beginObject()
                w.put("jobs", jobs)
                w.put("webhook_deliveries", deliveries)
                w.endObject()
            }
        } else {
            print("pruned \(jobs) jobs and \(deliveries) webhook deliveries")
        }
    }

    struct PruneBusy: Error, CustomStringConvertible {
        var description: String { "a worker is pruning right now; try again in a minute" }
    }
}
