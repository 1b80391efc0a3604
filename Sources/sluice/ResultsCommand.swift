import ArgumentParser
import Foundation
import Sluice
import SluiceJSON

/// `sluice results show ID`.
struct ResultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "results", abstract: "Show job results.", subcommands: [Show.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a succeeded job's result.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The job id.") var id: String
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            let uuid = try Parse.uuid(id, option: "ID")
            let (job, result) = try await options.withStore("sluice.results") { store, _ in
                (try await store.job(uuid), try await store.result(uuid))
            }
            guard let job else { throw UsageError("unknown job \(id)") }
            guard let result else {
                throw UsageError("job \(id) has no result: it is \(job.state.rawValue)" + (job.lastError.map { " (\(job.lastErrorClass ?? "error"): \($0))" } ?? ""))
            }
            if json {
                Output.line { w in
                    w.beginObject()
                    w.put("job_id", job.id)
                    w.put("tenant", job.tenant)
                    w.put("provider", result.provider)
                    w.put("model", result.model)
                    w.put("output_text", result.outputText)
                    w.put("finish_reason", result.finishReason)
                    w.put("input_tokens", result.usage.inputTokens)
                    w.put("output_tokens", result.usage.outputTokens)
                    w.put("cache_read_tokens", result.usage.cacheReadTokens)
                    w.put("cache_write_tokens", result.usage.cacheWriteTokens)
                    w.put("cost_usd", result.costUSD)
                    w.put("latency_ms", result.latencyMilliseconds)
                    w.put("ttft_ms", result.timeToFirstTokenMilliseconds)
                    w.put("finished_at", job.finishedAt)
                    w.endObject()
                }
            } else {
                print(result.outputText ?? "")
                FileHandle.standardError.write(Data("\(result.provider)/\(result.model)  in \(result.usage.inputTokens) out \(result.usage.outputTokens)  cost \(result.costUSD.map { String(format: "$%.6f", $0) } ?? "unknown")\n".utf8))
            }
        }
    }
}
