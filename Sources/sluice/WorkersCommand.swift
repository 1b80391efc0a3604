import ArgumentParser
import Foundation
import Sluice
import SluiceJSON
import SluicePostgres

/// `sluice workers`: the worker processes registered now.
struct WorkersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workers", abstract: "List live worker processes and the jobs each is running.")
    @OptionGroup var options: GlobalOptions
    @Flag(name: .long, help: "Print JSON lines.") var json = false

    func run() async throws {
        let logger = try options.makeLogger("sluice.workers")
        let client = SluiceClient(postgres: PostgresClient(configuration: try options.postgresConfiguration(), logger: logger), logger: logger)
        let workers: [LiveWorker]
        do {
            workers = try await client.workers()
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
        let now = Date()
        for worker in workers {
            let age = Int(now.timeIntervalSince(worker.lastHeartbeatAt).rounded())
            if json {
                var w = JSONWriter()
                w.beginObject()
                w.field("id", worker.id)
                w.field("host", worker.host)
                w.field("pid", worker.pid)
                w.key("lanes")
                w.beginArray()
                for lane in worker.lanes { w.string(lane) }
                w.endArray()
                w.field("concurrency", worker.concurrency)
                w.field("running", worker.runningJobs)
                w.field("started_at", Timestamps.rfc3339(worker.startedAt))
                w.field("last_heartbeat_at", Timestamps.rfc3339(worker.lastHeartbeatAt))
                w.field("stale", worker.isStale(now: now))
                w.endObject()
                print(String(decoding: w.bytes, as: UTF8.self))
            } else {
                print("\(worker.id)  running \(worker.runningJobs)/\(worker.concurrency)  lanes \(worker.lanes.joined(separator: ","))  heartbeat \(age) s ago\(worker.isStale(now: now) ? "  (stale)" : "")")
            }
        }
        if !json && workers.isEmpty { print("no live workers") }
    }
}
