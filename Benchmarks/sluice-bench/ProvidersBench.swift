import ArgumentParser
import Foundation
import Logging
import Sluice
import SluiceHTTP
import SluiceJSON
import SluiceProviders

#if canImport(Glibc)
import Glibc
import SluiceSupport
#endif

/// `sluice-bench providers`: SSE parser throughput, JSON parse/serialize/validate cost per
/// document, client CPU per 1,000 streamed tokens, and thousands of in-flight streaming calls
/// through one `HTTPClient`, against the mock provider running as a child process
/// (`$SLUICE_BIN_DIR/sluice-mock-provider --port 0`).
struct ProvidersBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "providers",
        abstract: "SluiceProviders: SSE parse MB/s, JSON parse/serialize ns per document, client CPU per 1k streamed tokens, concurrent in-flight streams (RSS/CPU)."
    )

    @Option(help: "Megabytes of synthetic OpenAI stream for the parser benchmark.") var sseMegabytes = 64
    @Option(help: "Streaming calls for the CPU-per-token measurement.") var cpuCalls = 400
    @Option(help: "Output tokens per call in the CPU measurement.") var cpuTokens = 250
    @Option(help: "Concurrency of the CPU measurement.") var cpuConcurrency = 16
    @Option(help: "Comma-separated in-flight levels.") var inflight = "1000,5000,10000"
    @Option(help: "Which parts to run: sse, json, cpu, inflight (comma-separated).") var parts = "sse,json,cpu,inflight"

    func run() async throws {
        var logger = Logger(label: "bench.providers")
        logger.logLevel = .error
        let selected = Set(parts.split(separator: ",").map(String.init))
        print("== sluice-bench providers (\(ProcessInfo.processInfo.activeProcessorCount) cores) \(Date())")
        if selected.contains("sse") { try sseBenchmark() }
        if selected.contains("json") { try jsonBenchmark() }
        if selected.contains("cpu") || selected.contains("inflight") {
            _ = Self.raiseFileLimit()
            let mock = try MockChild.start()
            defer { mock.stop() }
            let client = HTTPClient(logger: logger)
            let priceTable = try PriceTable(logger: logger)
            let provider = OpenAIProvider(
                configuration: .init(name: "openai", kind: .openai, baseURL: mock.openAIBaseURL, apiKeys: [.init("sk-bench")],
                                     timeouts: .init(connect: .seconds(30), firstByte: .seconds(60), idle: .seconds(60), total: .seconds(120))),
                httpClient: client, priceTable: priceTable, logger: logger
            )
            if selected.contains("cpu") { try await cpuBenchmark(provider) }
            if selected.contains("inflight") {
                for level in inflight.split(separator: ",").compactMap({ Int($0) }) {
                    try await inflightBenchmark(provider, concurrency: level)
                }
            }
            await client.shutdown()
        }
    }

    // MARK: SSE parser

    func sseBenchmark() throws {
        // A realistic OpenAI stream: one chunk per token, ~230 bytes per event.
        var event = Array(#"data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_06737a9306","choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,"finish_reason":null}]}"#.utf8)
        event += [0x0A, 0x0A]
        let eventsWanted = sseMegabytes * 1_000_000 / event.count
        var stream: [UInt8] = []
        stream.reserveCapacity(eventsWanted * event.count + 200)
        for _ in 0..<eventsWanted { stream += event }
        stream += Array("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":\(eventsWanted)}}\n\ndata: [DONE]\n\n".utf8)
        let chunkSize = 16 * 1024
        let chunks = stride(from: 0, to: stream.count, by: chunkSize).map { Array(stream[$0..<min($0 + chunkSize, stream.count)]) }
        let megabytes = Double(stream.count) / 1_000_000

        // Parser alone (best of 3).
        var best = Duration.seconds(1_000)
        var events = 0
        for _ in 0..<3 {
            var parser = SSEParser()
            var count = 0
            let start = ContinuousClock.now
            for chunk in chunks { try parser.feed(chunk) { _ in count += 1 } }
            best = min(best, ContinuousClock.now - start)
            events = count
        }
        let seconds = Double(best.components.seconds) + Double(best.components.attoseconds) / 1e18
        print(String(format: "sse parser: %.1f MB in 16 KiB chunks, %d events: %.0f MB/s, %.2f M events/s (best of 3)",
                     megabytes, events, megabytes / seconds, Double(events) / seconds / 1e6))

        // Parser + chunk JSON decoding + accumulation (what a streaming call costs in Swift).
        let start = ContinuousClock.now
        let tokens = try Self.accumulate(chunks)
        let elapsed = ContinuousClock.now - start
        let accumulateSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(String(format: "openai stream accumulator (parse + JSON decode + accumulate): %.0f MB/s, %.0f k tokens/s, %.1f µs/token",
                     megabytes / accumulateSeconds, Double(tokens) / accumulateSeconds / 1000, accumulateSeconds / Double(tokens) * 1e6))
    }

    static func accumulate(_ chunks: [[UInt8]]) throws -> Int {
        try StreamBenchHook.openAIOutputTokens(chunks)
    }

    // MARK: JSON documents

    /// `JSONValue.parse`, `serialized()` and `JSONSyntax.isValid` against the Foundation paths
    /// they replaced (`JSONDecoder`/`JSONEncoder` through `JSONValue`'s `Codable` conformance, and
    /// `JSONSerialization` for the well-formedness check), on a typical chat request and a 50 KB one.
    func jsonBenchmark() throws {
        let small = Array(#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a concise assistant. Answer in one short paragraph."},{"role":"user","content":"Summarise: the quarterly report is due on Friday and needs the \"Q3\" figures."}],"max_tokens":256,"temperature":0.2,"stream":true}"#.utf8)
        let large = Self.largeRequestBody(bytes: 50_000)
        for (name, document, iterations) in [("chat request", small, 20_000), ("50 KB request", large, 200)] {
            let value = try JSONValue.parse(document)
            print("json \(name) (\(document.count) bytes, \(iterations) iterations, best of 3):")
            let rows: [(String, () throws -> Int)] = [
                ("parse     JSONDecoder (old)", { try Self.shape(JSONDecoder().decode(JSONValue.self, from: Data(document))) }),
                ("parse     JSONValue.parse  ", { try Self.shape(JSONValue.parse(document)) }),
                ("serialize JSONEncoder (old)", {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    return Array(try encoder.encode(value)).count
                }),
                ("serialize serialized()     ", { value.serialized().count }),
                ("validate  JSONSerialization", { (try? JSONSerialization.jsonObject(with: Data(document), options: [.fragmentsAllowed])) == nil ? 0 : 1 }),
                ("validate  JSONSyntax       ", { JSONSyntax.isValid(document) ? 1 : 0 }),
            ]
            for (label, body) in rows {
                var best = Duration.seconds(1_000)
                var sink = 0
                for _ in 0..<3 {
                    let start = ContinuousClock.now
                    for _ in 0..<iterations { sink &+= try body() }
                    best = min(best, ContinuousClock.now - start)
                }
                if sink == Int.min { print("unreachable") }  // keeps the results alive
                let perDocument = Self.seconds(best) / Double(iterations)
                print(String(format: "  %@: %9.0f ns/doc %8.1f MB/s", label, perDocument * 1e9, Double(document.count) / perDocument / 1e6))
            }
        }
    }

    /// A number that depends on the whole parsed value, so the parse cannot be optimised away.
    static func shape(_ value: JSONValue) -> Int {
        switch value {
        case .object(let members): members.count
        case .array(let elements): elements.count
        default: 1
        }
    }

    /// A chat request of about `bytes` bytes: many turns of prose with escapes and non-ASCII text,
    /// a tool definition, and assorted numbers.
    static func largeRequestBody(bytes: Int) -> [UInt8] {
        let sentence = "The café's “quarterly” report (Q3) lists 1,204 items at 3.75 € each — see \"notes/2024\".\n\t"
        var messages: [JSONValue] = [.object(["role": .string("system"), "content": .string("You are a careful analyst.")])]
        var turn = 0
        while JSONValue.object(["messages": .array(messages)]).serialized().count < bytes - 600 {
            messages.append(.object([
                "role": .string(turn % 2 == 0 ? "user" : "assistant"),
                "content": .string(String(repeating: sentence, count: 8) + "Turn \(turn)."),
                "metadata": .object(["turn": .number(Double(turn)), "score": .number(Double(turn) * 0.125 + 0.1), "flags": .array([.bool(true), .null])]),
            ]))
            turn += 1
        }
        let tool: JSONValue = .object([
            "type": .string("function"),
            "function": .object([
                "name": .string("lookup_item"),
                "parameters": .object(["type": .string("object"), "properties": .object(["id": .object(["type": .string("integer")])]), "required": .array([.string("id")])]),
            ]),
        ])
        return JSONValue.object([
            "model": .string("gpt-4o"), "messages": .array(messages), "tools": .array([tool]),
            "max_tokens": .number(4096), "temperature": .number(0.7), "top_p": .number(0.95), "stream": .bool(true),
        ]).serialized()
    }

    // MARK: CPU per 1,000 tokens

    func cpuBenchmark(_ provider: OpenAIProvider) async throws {
        // Warm up connections and code paths.
        try await runCalls(provider, count: cpuConcurrency * 2, concurrency: cpuConcurrency, prompt: "warm up [[mock: tokens=20]]")
        let before = Self.usage()
        let start = ContinuousClock.now
        let tokens = try await runCalls(provider, count: cpuCalls, concurrency: cpuConcurrency, prompt: "alpha beta gamma delta [[mock: tokens=\(cpuTokens)]]")
        let wall = ContinuousClock.now - start
        let after = Self.usage()
        let cpu = after.cpuSeconds - before.cpuSeconds
        let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        print(String(format: "client CPU: %d streamed calls × %d tokens (concurrency %d): %.2f ms CPU per 1,000 tokens (%.3f s CPU, %.2f s wall, %.0f tokens/s)",
                     cpuCalls, cpuTokens, cpuConcurrency, cpu / Double(tokens) * 1000 * 1000, cpu, wallSeconds, Double(tokens) / wallSeconds))
    }

    @discardableResult
    func runCalls(_ provider: OpenAIProvider, count: Int, concurrency: Int, prompt: String) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            var started = 0
            var tokens = 0
            func add() {
                group.addTask { try await provider.call(Self.call(prompt)).usage.outputTokens }
                started += 1
            }
            while started < min(concurrency, count) { add() }
            while let result = try await group.next() {
                tokens += result
                if started < count { add() }
            }
            return tokens
        }
    }

    static func call(_ prompt: String) -> ProviderCall {
        let body = #"{"messages":[{"role":"user","content":"\#(prompt)"}]}"#
        return ProviderCall(jobID: UUID(), tenant: "bench", provider: "openai", model: "gpt-4o-mini", request: Array(body.utf8), maxOutputTokens: 1000)
    }

    // MARK: In-flight streams

    func inflightBenchmark(_ provider: OpenAIProvider, concurrency: Int) async throws {
        // ~2 s per call: 500 ms to the first token, then 12 more at 8 tokens/s.
        let prompt = "slow stream [[mock: tokens=13,ttft_ms=500,tps=8]]"
        let before = Self.usage()
        let start = ContinuousClock.now
        var failures: [String: Int] = [:]
        var succeeded = 0
        var maxLatency = Duration.zero
        await withTaskGroup(of: Result<Duration, ProviderFailure>.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    do {
                        return .success(try await provider.call(Self.call(prompt)).latency)
                    } catch let failure as ProviderFailure {
                        return .failure(failure)
                    } catch {
                        return .failure(ProviderFailure(.internal, "\(error)"))
                    }
                }
            }
            for await result in group {
                switch result {
                case .success(let latency):
                    succeeded += 1
                    maxLatency = max(maxLatency, latency)
                case .failure(let failure):
                    failures[failure.errorClass.rawValue, default: 0] += 1
                }
            }
        }
        let wall = ContinuousClock.now - start
        let after = Self.usage()
        print(String(format: "in-flight %5d streams (~2 s each): %d ok, failures %@, wall %.2f s, slowest call %.2f s, client CPU %.2f s, VmHWM %d MiB (RSS now %d MiB)",
                     concurrency, succeeded, failures.description, Self.seconds(wall), Self.seconds(maxLatency),
                     after.cpuSeconds - before.cpuSeconds, after.peakRSSKiB / 1024, after.rssKiB / 1024))
    }

    // MARK: Process helpers

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    struct Usage {
        var cpuSeconds: Double
        var rssKiB: Int
        var peakRSSKiB: Int
    }

    static func usage() -> Usage {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        var rss = 0, hwm = 0
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard parts.count >= 2, let value = Int(parts[1]) else { continue }
                if parts[0] == "VmRSS:" { rss = value }
                if parts[0] == "VmHWM:" { hwm = value }
            }
        }
        return Usage(cpuSeconds: cpu, rssKiB: rss, peakRSSKiB: hwm)
    }

    static func raiseFileLimit() -> Int {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        return Int(limit.rlim_cur)
    }

    /// The mock provider as a child process on a free port.
    final class MockChild: Sendable {
        let process: Process
        let openAIBaseURL: String

        init(process: Process, openAIBaseURL: String) {
            self.process = process
            self.openAIBaseURL = openAIBaseURL
        }

        static func start() throws -> MockChild {
            guard let directory = ProcessInfo.processInfo.environment["SLUICE_BIN_DIR"] else {
                throw ValidationError("SLUICE_BIN_DIR is not set: run through scripts/bench providers")
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: directory + "/sluice-mock-provider")
            process.arguments = ["--port", "0", "--log-level", "error"]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            // Read "listening on http://HOST:PORT".
            var line = ""
            let handle = pipe.fileHandleForReading
            while !line.contains("\n") {
                let data = handle.availableData
                if data.isEmpty { throw ValidationError("sluice-mock-provider exited before listening") }
                line += String(decoding: data, as: UTF8.self)
            }
            guard let range = line.range(of: "http://") else { throw ValidationError("unexpected mock output: \(line)") }
            let base = line[range.lowerBound...].prefix { !$0.isWhitespace }
            print("mock provider child pid \(process.processIdentifier) at \(base)")
            return MockChild(process: process, openAIBaseURL: base + "/v1")
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
