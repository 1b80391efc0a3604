import ArgumentParser
import Foundation
import Sluice
import SluiceJSON
import SluicePostgres

/// `sluice jobs show ID` and `sluice jobs list`.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "Inspect jobs.", subcommands: [Show.self, List.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one job and its result.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The job id.") var id: String
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            guard let uuid = UUID(uuidString: id) else { throw ValidationError("ID: \(id) is not a UUID") }
            let logger = try options.makeLogger("sluice.jobs")
            let client = SluiceClient(postgres: PostgresClient(configuration: try options.postgresConfiguration(), logger: logger), logger: logger)
            guard let job = try await client.job(uuid) else {
                await client.shutdown()
                throw ValidationError("job \(id) not found")
            }
            let result = try await client.result(uuid)
            await client.shutdown()
            if json {
                var writer = JSONWriter()
                JobPrinter.write(job, result: result, to: &writer)
                print(String(decoding: writer.bytes, as: UTF8.self))
            } else {
                JobPrinter.printText(job, result: result)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's jobs, newest first.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Tenant.") var tenant: String
        @Option(name: .long, help: "Only this state.") var state: String?
        @Option(name: .long, help: "Only this lane.") var lane: String?
        @Option(name: .long, help: "At most this many.") var limit: Int = 50
        @Option(name: .long, help: "Jobs older than this id (pagination).") var after: String?
        @Flag(name: .long, help: "Print JSON lines.") var json = false

        func run() async throws {
            let state = try self.state.map { text -> JobState in
                guard let state = JobState(rawValue: text) else { throw ValidationError("--state: unknown state \(text)") }
                return state
            }
            let lane = try self.lane.map { text -> Lane in
                guard let lane = Lane(rawValue: text) else { throw ValidationError("--lane: unknown lane \(text)") }
                return lane
            }
            let after = try self.after.map { text -> UUID in
                guard let id = UUID(uuidString: text) else { throw ValidationError("--after: \(text) is not a UUID") }
                return id
            }
            let logger = try options.makeLogger("sluice.jobs")
            let client = SluiceClient(postgres: PostgresClient(configuration: try options.postgresConfiguration(), logger: logger), logger: logger)
            let jobs = try await client.list(tenant: tenant, state: state, lane: lane, limit: limit, after: after)
            await client.shutdown()
            for job in jobs {
                if json {
                    var writer = JSONWriter()
                    JobPrinter.write(job, result: nil, to: &writer)
                    print(String(decoding: writer.bytes, as: UTF8.self))
                } else {
                    print("\(job.id.uuidString.lowercased())  \(job.state.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(job.lane.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)) \(job.provider)/\(job.model)  attempt \(job.attempt)/\(job.maxAttempts)")
                }
            }
        }
    }
}

enum JobPrinter {
    static func write(_ job: Job, result: JobResult?, to w: inout JSONWriter) {
        w.beginObject()
        w.field("id", job.id.uuidString.lowercased())
        w.field("tenant", job.tenant)
        w.field("lane", job.lane.rawValue)
        w.field("state", job.state.rawValue)
        w.field("provider", job.provider)
        w.field("model", job.model)
        w.field("attempt", job.attempt)
        w.field("max_attempts", job.maxAttempts)
        w.field("created_at", Timestamps.rfc3339(job.createdAt))
        w.field("finished_at", job.finishedAt.map(Timestamps.rfc3339))
        w.field("last_error_class", job.lastErrorClass)
        w.field("last_error", job.lastError)
        w.field("wait_reason", job.waitReason)
        w.field("metadata", raw: job.metadata.bytes)
        if let result {
            w.key("result")
            w.beginObject()
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
        print("target:    \(job.provider)/\(job.model)   attempt \(job.attempt) of \(job.maxAttempts)")
        print("created:   \(Timestamps.rfc3339(job.createdAt))   finished: \(job.finishedAt.map(Timestamps.rfc3339) ?? "-")")
        if let error = job.lastError { print("error:     \(job.lastErrorClass ?? "?"): \(error)") }
        if let reason = job.waitReason { print("waiting:   \(reason)") }
        if let result {
            print("output:    \(result.outputText ?? "")")
            print("usage:     in \(result.usage.inputTokens) out \(result.usage.outputTokens) cache r/w \(result.usage.cacheReadTokens)/\(result.usage.cacheWriteTokens)   cost \(result.costUSD.map { String(format: "$%.6f", $0) } ?? "unknown")")
        }
    }
}
