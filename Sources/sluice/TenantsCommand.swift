import ArgumentParser
import Foundation
import Sluice
import SluiceJSON
import SluiceSupport
import SluiceWorker

/// `sluice tenants list|show|create|set|pause|resume|rotate-secret`.
struct TenantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants", abstract: "Administer tenants: limits, pausing, webhook endpoint and signing secret.",
        subcommands: [List.self, Show.self, Create.self, Set.self, Pause.self, Resume.self, RotateSecret.self])

    /// The flags of `create` and `set`, one flag per `sluice.tenants` column (``TenantUpdate``).
    /// A new setting is one more option here and one more line in ``updates``.
    struct Settings: ParsableArguments {
        @Option(name: .long, help: "Jobs of the tenant running at once, across all workers.") var maxConcurrency: Int?
        @Option(name: .long, help: "Jobs the tenant may have queued; more are refused at enqueue.") var maxQueued: Int?
        @Option(name: .long, help: "Share of starts relative to other tenants with a backlog in the same lane (fair queueing; 0 < W <= 1000, default 1).") var weight: Double?
        @Option(name: .long, help: "The tenant's webhook endpoint (https; setting it re-enables a disabled endpoint).") var webhookURL: String?
        @Flag(name: .long, help: "Remove the tenant's webhook endpoint.") var clearWebhookURL = false
        @Option(name: .long, help: "Requests per minute of the tenant's plan (0 removes the limit).") var rpm: Int?
        @Option(name: .long, help: "Tokens per minute of the tenant's plan (0 removes the limit).") var tpm: Int?
        @Option(name: .long, help: "Hard token budget per UTC day (0 removes it); at the limit the tenant's jobs are held.") var dailyTokens: Int?
        @Option(name: .long, help: "Hard token budget per UTC month (0 removes it).") var monthlyTokens: Int?
        @Option(name: .long, help: "Hard budget in USD per UTC day (0 removes it).") var dailyUsd: Double?
        @Option(name: .long, help: "Hard budget in USD per UTC month (0 removes it).") var monthlyUsd: Double?
        @Option(name: .long, help: "Fraction of each hard budget that logs a soft-limit warning (0 < F <= 1; 0 removes it).") var softFraction: Double?
        @Option(name: .long, help: "Once a soft budget is reached, start the tenant's jobs in this lower lane (high, normal, batch; none removes it).") var softLane: String?
        @Option(name: .long, help: "Once a soft budget is reached, run the tenant's jobs through this cheaper route (none removes it).") var softRoute: String?

        func updates() throws -> [TenantUpdate] {
            if clearWebhookURL && webhookURL != nil { throw UsageError("--webhook-url and --clear-webhook-url exclude each other") }
            var updates: [TenantUpdate] = []
            if let maxConcurrency { updates.append(.maxConcurrency(maxConcurrency)) }
            if let maxQueued { updates.append(.maxQueuedJobs(maxQueued)) }
            if let weight { updates.append(.weight(weight)) }
            if let webhookURL { updates.append(.webhookURL(webhookURL)) }
            if clearWebhookURL { updates.append(.webhookURL(nil)) }
            func limit(_ flag: String, _ value: Int?) throws -> Int?? {
                guard let value else { return nil }
                if value < 0 { throw UsageError("--\(flag) must be 0 (no limit) or a positive number (got \(value))") }
                return .some(value == 0 ? nil : value)
            }
            func amount(_ flag: String, _ value: Double?) throws -> Double?? {
                guard let value else { return nil }
                if value < 0 || !value.isFinite { throw UsageError("--\(flag) must be 0 (no budget) or a positive amount (got \(value))") }
                return .some(value == 0 ? nil : value)
            }
            if let v = try limit("rpm", rpm) { updates.append(.rpm(v)) }
            if let v = try limit("tpm", tpm) { updates.append(.tpm(v)) }
            if let v = try limit("daily-tokens", dailyTokens) { updates.append(.dailyTokens(v)) }
            if let v = try limit("monthly-tokens", monthlyTokens) { updates.append(.monthlyTokens(v)) }
            if let v = try amount("daily-usd", dailyUsd) { updates.append(.dailyUSD(v)) }
            if let v = try amount("monthly-usd", monthlyUsd) { updates.append(.monthlyUSD(v)) }
            if let v = try amount("soft-fraction", softFraction) {
                if let f = v, f > 1 { throw UsageError("--soft-fraction must be a fraction from 0 to 1 (got \(f))") }
                updates.append(.softFraction(v))
            }
            if let softLane {
                if softLane == "none" {
                    updates.append(.softLane(nil))
                } else {
                    guard let lane = Lane(rawValue: softLane), lane != .interactive else {
                        throw UsageError("--soft-lane must be high, normal, batch or none (got \(softLane))")
                    }
                    updates.append(.softLane(lane))
                }
            }
            if let softRoute { updates.append(.softRoute(softRoute == "none" ? nil : softRoute)) }
            return updates
        }
    }

    /// A weight as typed: `2`, `0.5`, `1.25`.
    static func weight(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    static func write(_ tenant: Tenant, to w: inout JSONWriter) {
        w.beginObject()
        w.put("id", tenant.id)
        w.put("paused", tenant.paused)
        w.put("max_concurrency", tenant.maxConcurrency)
        w.put("max_queued", tenant.maxQueuedJobs)
        w.put("weight", tenant.weight)
        w.put("rpm", tenant.rpm)
        w.put("tpm", tenant.tpm)
        w.put("daily_tokens", tenant.dailyTokens)
        w.put("monthly_tokens", tenant.monthlyTokens)
        w.put("daily_usd", tenant.dailyUSD)
        w.put("monthly_usd", tenant.monthlyUSD)
        w.put("soft_fraction", tenant.softFraction)
        w.put("soft_lane", tenant.softLane?.rawValue)
        w.put("soft_route", tenant.softRoute)
        w.put("held_until", tenant.heldUntil)
        w.put("hold_reason", tenant.holdReason)
        w.put("webhook_url", tenant.webhookURL)
        w.put("webhook_disabled", tenant.webhookDisabled)
        w.put("active_secrets", tenant.activeSecrets)
        w.put("queued", tenant.queued)
        w.put("running", tenant.running)
        w.put("created_at", tenant.createdAt)
        w.put("updated_at", tenant.updatedAt)
        w.endObject()
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants with their limits and load.")
        @OptionGroup var options: GlobalOptions
        @Flag(name: .long, help: "Print JSON lines.") var json = false

        func run() async throws {
            let tenants = try await options.withStore("sluice.tenants") { store, _ in try await store.tenants() }
            for tenant in tenants {
                if json {
                    Output.line { TenantsCommand.write(tenant, to: &$0) }
                } else {
                    print("\(Output.pad(tenant.id, 20)) \(tenant.paused ? "paused " : "active ") queued \(tenant.queued)  running \(tenant.running)/\(tenant.maxConcurrency)  weight \(TenantsCommand.weight(tenant.weight))  webhook \(tenant.webhookURL ?? "-")\(tenant.webhookDisabled.map { " (disabled: \($0))" } ?? "")")
                }
            }
            if !json && tenants.isEmpty { print("no tenants") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one tenant.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The tenant id.") var tenant: String
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            guard let found = try await options.withStore("sluice.tenants", { store, _ in try await store.tenant(tenant) }) else {
                throw UsageError("unknown tenant \(tenant): create it with `sluice tenants create \(tenant)`")
            }
            if json {
                Output.line { TenantsCommand.write(found, to: &$0) }
            } else {
                print("tenant:          \(found.id)\(found.paused ? "  (paused)" : "")")
                print("max concurrency: \(found.maxConcurrency)   max queued: \(found.maxQueuedJobs)   weight: \(TenantsCommand.weight(found.weight))")
                print("rpm / tpm:       \(found.rpm.map(String.init) ?? "-") / \(found.tpm.map(String.init) ?? "-")")
                let money = { (v: Double?) in v.map { String(format: "$%.2f", $0) } ?? "-" }
                print("budgets:         tokens \(found.dailyTokens.map(String.init) ?? "-")/day \(found.monthlyTokens.map(String.init) ?? "-")/month, "
                      + "\(money(found.dailyUSD))/day \(money(found.monthlyUSD))/month"
                      + (found.softFraction.map { String(format: ", soft at %.0f %%", $0 * 100) } ?? ""))
                if let held = found.heldUntil {
                    print("HELD until:      \(Timestamps.rfc3339(held)): \(found.holdReason ?? "budget spent")")
                }
                print("webhook:         \(found.webhookURL ?? "-")\(found.webhookDisabled.map { "  (disabled: \($0))" } ?? "")")
                print("secrets:         \(found.activeSecrets) signing")
                print("load:            \(found.queued) queued, \(found.running) running")
                print("created:         \(Timestamps.rfc3339(found.createdAt))   updated: \(Timestamps.rfc3339(found.updatedAt))")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a tenant and print its webhook signing secret (shown only this once).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The tenant id (a-z, 0-9, _ and -).") var tenant: String
        @OptionGroup var settings: Settings
        @Flag(name: .long, help: "Print JSON: {\"id\", \"secret\"}.") var json = false

        func run() async throws {
            let updates = try settings.updates()
            let secret = try WebhookSigner.generateSecret()
            try await options.withStore("sluice.tenants") { store, _ in
                try await store.createTenant(tenant, updates: updates, secret: secret)
            }
            if json {
                Output.line { w in
                    w.beginObject()
                    w.put("id", tenant)
                    w.put("secret", secret.revealed)
                    w.endObject()
                }
            } else {
                print("created tenant \(tenant)")
                print("webhook signing secret (shown only now; `sluice tenants rotate-secret \(tenant)` makes a new one):")
                print(secret.revealed)
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a tenant's limits or webhook endpoint.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The tenant id.") var tenant: String
        @OptionGroup var settings: Settings

        func run() async throws {
            let updates = try settings.updates()
            guard !updates.isEmpty else { throw UsageError("nothing to set: pass at least one of the options (see --help)") }
            try await options.withStore("sluice.tenants") { store, _ in try await store.updateTenant(tenant, updates) }
            print("updated tenant \(tenant)")
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pause a tenant: its new jobs are refused and its queued jobs are not started.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The tenant id.") var tenant: String

        func run() async throws {
            try await options.withStore("sluice.tenants") { store, _ in try await store.updateTenant(tenant, [.paused(true)]) }
            print("paused tenant \(tenant)")
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a paused tenant.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The tenant id.") var tenant: String

        func run() async throws {
            try await options.withStore("sluice.tenants") { store, _ in try await store.updateTenant(tenant, [.paused(false)]) }
            print("resumed tenant \(tenant)")
        }
    }

    struct RotateSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-secret",
            abstract: "Make a new webhook signing secret and print it once; the old one keeps signing for the grace period.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The tenant id.") var tenant: String
        @Option(name: .long, help: "How long the old secret keeps signing too (default 24h; 0 ends it now).") var grace: String = "24h"
        @Flag(name: .long, help: "Print JSON: {\"secret\"}.") var json = false

        func run() async throws {
            let grace = try Parse.duration(self.grace, option: "--grace")
            let secret = try WebhookSigner.generateSecret()
            try await options.withStore("sluice.tenants") { store, _ in
                try await store.rotateTenantSecret(tenant, secret: secret, grace: grace)
            }
            if json {
                Output.line { w in
                    w.beginObject()
                    w.put("secret", secret.revealed)
                    w.endObject()
                }
            } else {
                print("new webhook signing secret for \(tenant) (shown only now; the old one signs too for \(self.grace)):")
                print(secret.revealed)
            }
        }
    }
}
