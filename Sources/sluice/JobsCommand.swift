import ArgumentParser
import Foundation
import Sluice
import SluiceJSON
import SluicePostgres

/// `sluice jobs show ID` and `sluice jobs list`.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "Inspect and cancel jobs.", subcommands: [Show.self, List.self, Cancel.self])

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel jobs: queued ones at once, running ones are asked to stop.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "Job ids.") var ids: [String]
        @Flag(name: .long, help: "Print JSON lines: {\"id\", \"state\"}.") var json = false

        func run() async throws {
            guard !ids.isEmpty else { throw UsageError("give at least one job id") }
            let parsed = try ids.map { try Parse.uuid($0, option: "ID") }
            let states = try await options.withStore("sluice.jobs") { store, _ in
                var states: [(UUID, JobState)] = []
                for id in parsed { states.append((id, try await store.cancel(id))) }
                return states
            }
            for (id, state) in states {
                if json {
                    Output.line { w in
                        w.beginObject()
                        w.put("id", id)
                        w.put("state", state.rawValue)
                        w.endObject()
                    }
                } else {
                    print("\(id.uuidString.lowercased())  \(state == .running ? "cancel requested (running)" : state.rawValue)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one job and its result.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The job id.") var id: String
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            let uuid = try Parse.uuid(id, option: "ID")
            let logger = try options.makeLogger("sluice.jobs")
            let client = SluiceClient(postgres: PostgresClient(configuration: try options.postgresConfiguration(), logger: logger), logger: logger)
            guard let job = try await client.job(uuid) else {
                await client.shutdown()
                throw UsageError("unknown job \(id)")
            }
            let result = try await client.result(uuid)
            // A route job's attempts say which target each called and why it moved on.
            let attempts = job.route == nil ? [] : try await JobStore(postgres: client.postgres).attempts(uuid)
            await client.shutdown()
            if json {
                var writer = JSONWriter()
                JobPrinter.write(job, result: result, attempts: job.route == nil ? nil : attempts, to: &writer)
                print(String(decoding: writer.bytes, as: UTF8.self))
            } else {
                JobPrinter.printText(job, result: result)
                if !attempts.isEmpty { print("attempts:") }
                for a in attempts { AttemptPrinter.printText(a) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first (every tenant's unless --tenant).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Only this tenant's.") var tenant: String?
        @Option(name: .long, help: "Only this state (queued, running, succeeded, dead, cancelled).") var state: String?
        @Option(name: .long, help: "Only this lane (interactive, high, normal, batch).") var lane: String?
        @Option(name: .long, help: "Only jobs created within this duration (e.g. 15m, 2h, 7d).") var since: String?
        @Option(name: .long, help: "At most this many.") var limit: Int = 50
        @Option(name: .long, help: "Jobs older than this id (pagination).") var after: String?
        @Flag(name: .long, help: "Print JSON lines.") var json = false

        func run() async throws {
            let state = try Parse.state(self.state)
            let lane = try Parse.lane(self.lane)
            let since = try Parse.since(self.since)
            let after = try self.after.map { try Parse.uuid($0, option: "--after") }
            guard limit >= 1 && limit <= 100_000 else { throw UsageError("--limit must be from 1 to 100000") }
            let jobs = try await options.withStore("sluice.jobs") { store, _ in
                try await store.listJobs(tenant: tenant, state: state, lane: lane, since: since, limit: limit, after: after)
            }
            for job in jobs {
                if json {
                    var writer = JSONWriter()
                    JobPrinter.write(job, result: nil, to: &writer)
                    print(String(decoding: writer.bytes, as: UTF8.self))
                } else {
                    print("\(job.id.uuidString.lowercased())  \(job.tenant)  \(job.state.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(job.lane.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)) \(job.provider)/\(job.model)  attempt \(job.attempt)/\(job.maxAttempts)")
                }
            }
        }
    }
}

enum JobPrinter {
    static func write(_ job: Job, result: JobResult?, attempts: [AttemptRecord]? = nil, to w: inout JSONWriter) {
        w.beginObject()
        w.field("id", job.id.uuidString.lowercased())
        w.field("tenant", job.tenant)
        w.field("lane", job.lane.rawValue)
        w.field("state", job.state.rawValue)
        w.field("provider", job.provider)
        w.field("model", job.model)
        w.field("route", job.route)
        w.field("attempt", job.attempt)
        w.field("max_attempts", job.maxAttempts)
        w.field("created_at", Timestamps.rfc3339(job.createdAt))
        w.field("finished_at", job.finishedAt.map(Timestamps.rfc3339))
        w.field("last_error_class", job.lastErrorClass)
        w.field("last_error", job.lastError)
        w.field("wait_reason", job.waitReason)
        w.field("metadata", raw: job.metadata.bytes)
        if let attempts {
            w.key("attempts")
            w.beginArray()
            for a in attempts {
                w.beginObject()
                w.put("attempt", a.attempt)
                w.put("outcome", a.outcome)
                w.put("error_class", a.errorClass)
                AttemptPrinter.writeRoute(a, to: &w)
                w.endObject()
            }
            w.endArray()
        }
        if let result {
            w.key("result")
            w.beginObject()
            w.field("provider", result.provider)
            w.field("model", result.model)
            w.field("output_text", result.outputText)
            w.field("finish_reason", result.finishReason)
            w.field("input_tokens", result.usage.inputTokens)
            w.field("output_tokens", result.usage.outputTokens)
            w.field("cache_read_tokens", result.usage.cacheReadTokens)
            w.field("cache_write_tokens", result.usage.cacheWriteTokens)
            w.field("cost_usd", result.costUSD)
            w.field("latency_ms", result.latencyMilliseconds)
            w.field("ttft_ms", result.timeToFirstTokenMilliseconds)
            w.endObject()
        }
        w.endObject()
    }

    static func printText(_ job: Job, result: JobResult?) {
        print("id:        \(job.id.uuidString.lowercased())")
        print("tenant:    \(job.tenant)   lane: \(job.lane.rawValue)   state: \(job.state.rawValue)")
        if let route = job.route {
            print("route:     \(route)   attempt \(job.attempt) of \(job.maxAttempts)" + (result.map { "   answered by \($0.provider)/\($0.model)" } ?? ""))
        } else {
            print("target:    \(job.provider)/\(job.model)   attempt \(job.attempt) of \(job.maxAttempts)")
        }
        print("created:   \(Timestamps.rfc3339(job.createdAt))   finished: \(job.finishedAt.map(Timestamps.rfc3339) ?? "-")")
        if let error = job.lastError { print("error:     \(job.lastErrorClass ?? "?"): \(error)") }
        if let reason = job.waitReason { print("waiting:   \(reason)") }
        if let result {
            print("output:    \(result.outputText ?? "")")
            print("usage:     in \(result.usage.inputTokens) out \(result.usage.outputTokens) cache r/w \(result.usage.cacheReadTokens)/\(result.usage.cacheWriteTokens)   cost \(result.costUSD.map { String(format: "$%.6f", $0) } ?? "unknown")")
        }
    }
}
