import ArgumentParser
import Foundation
import Sluice
import SluiceJSON

/// `sluice webhooks list|redeliver`.
struct WebhooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhooks", abstract: "Inspect and redeliver webhook deliveries.", subcommands: [List.self, Redeliver.self])

    static func write(_ d: WebhookDeliveryRecord, to w: inout JSONWriter) {
        w.beginObject()
        w.put("id", d.id)
        w.put("webhook_id", "msg_" + d.id.uuidString.lowercased())
        w.put("job_id", d.jobID)
        w.put("tenant", d.tenant)
        w.put("event", d.event)
        w.put("url", d.url)
        w.put("state", d.state)
        w.put("attempts", d.attempts)
        w.put("next_attempt_at", d.state == "pending" ? d.nextAttemptAt : nil)
        w.put("last_attempt_at", d.lastAttemptAt)
        w.put("last_status", d.lastStatus)
        w.put("last_error", d.lastError)
        w.put("created_at", d.createdAt)
        w.put("delivered_at", d.deliveredAt)
        w.put("endpoint_disabled", d.endpointDisabled)
        w.endObject()
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List webhook deliveries, newest first.")
        @OptionGroup var options: GlobalOptions
        @Flag(name: .long, help: "Only failed deliveries.") var failed = false
        @Option(name: .long, help: "Only this tenant's.") var tenant: String?
        @Option(name: .long, help: "Only deliveries created within this duration (e.g. 1h, 7d).") var since: String?
        @Option(name: .long, help: "At most this many.") var limit: Int = 100
        @Flag(name: .long, help: "Print JSON lines.") var json = false

        func run() async throws {
            let since = try Parse.since(since)
            guard limit >= 1 else { throw UsageError("--limit must be at least 1") }
            let filter = JobStore.WebhookFilter(failedOnly: failed, tenant: tenant, since: since, limit: limit)
            let deliveries = try await options.withStore("sluice.webhooks") { store, _ in try await store.webhookDeliveries(filter) }
            for d in deliveries {
                if json {
                    Output.line { WebhooksCommand.write(d, to: &$0) }
                } else {
                    print("\(d.id.uuidString.lowercased())  \(Output.pad(d.state, 9)) \(Output.pad(d.event, 13)) \(d.tenant)  attempts \(d.attempts)  \(d.lastStatus.map { "HTTP \($0)" } ?? "")  \(d.url)\(d.lastError.map { "  (\($0))" } ?? "")")
                }
            }
            if !json && deliveries.isEmpty { print("no deliveries") }
        }
    }

    struct Redeliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send deliveries again with a fresh retry schedule: one by id, or every failed one since a time.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "Delivery ids (from `sluice webhooks list`).") var ids: [String] = []
        @Flag(name: .long, help: "Every failed delivery (with --since).") var failed = false
        @Option(name: .long, help: "With --failed: created within this duration (e.g. 1h, 7d).") var since: String?
        @Option(name: .long, help: "With --failed: only this tenant's.") var tenant: String?
        @Flag(name: .long, help: "Print JSON: {\"redelivered\", \"ids\"}.") var json = false

        func run() async throws {
            if ids.isEmpty == !failed {
                throw UsageError("give delivery ids, or --failed --since D (not both)")
            }
            if failed && since == nil { throw UsageError("--failed needs --since (e.g. --since 24h)") }
            let parsed = try ids.map { try Parse.uuid($0, option: "ID") }
            let since = try Parse.since(since)
            let redelivered: [UUID] = try await options.withStore("sluice.webhooks") { store, _ in
                var targets = parsed
                for id in parsed where try await store.webhookDelivery(id) == nil {
                    throw UsageError("unknown delivery \(id.uuidString.lowercased())")
                }
                if let since { targets = try await store.failedWebhookIDs(since: since, tenant: tenant) }
                return targets.isEmpty ? [] : try await store.redeliverWebhooks(targets)
            }
            if json {
                Output.line { w in
                    w.beginObject()
                    w.put("redelivered", redelivered.count)
                    w.key("ids")
                    w.beginArray()
                    for id in redelivered { w.string(id.uuidString.lowercased()) }
                    w.endArray()
                    w.endObject()
                }
            } else {
                print("queued \(redelivered.count) deliveries again" + (parsed.count > redelivered.count ? " (\(parsed.count - redelivered.count) still pending, left alone)" : ""))
            }
        }
    }
}
