#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Foundation
import Logging
import SluiceMockProvider
import SluiceSupport

/// `sluice-mock-provider`: the mock OpenAI + Anthropic server used by Sluice's tests,
/// benchmarks and demo. Prints `listening on http://HOST:PORT` once bound; SIGTERM/SIGINT
/// shut it down gracefully.
@main
struct MockProviderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-mock-provider",
        abstract: "A mock LLM provider speaking the OpenAI and Anthropic wire formats, with fault injection."
    )

    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port to bind (0 = any free port; the real one is printed).") var port = 8089
    @Option(help: "Requests per minute per (API key, model); unlimited if not given.") var rpm: Int?
    @Option(help: "Tokens per minute per (API key, model) (input + max_tokens); unlimited if not given.") var tpm: Int?
    @Option(name: .customLong("rate-window-ms"), help: "Length of a rate-limit window in ms.") var rateWindowMs = 60_000
    @Option(name: .customLong("ttft-ms"), help: "Default delay before the first token, in ms.") var ttftMs = 0
    @Option(help: "Default tokens per second while streaming (as fast as possible if not given).") var tps: Double?
    @Option(help: "Default output length in tokens.") var tokens = 16
    @Option(name: .customLong("fault-rate"), help: "Fraction of requests (0...1) failed with --fault-status.") var faultRate = 0.0
    @Option(name: .customLong("fault-status"), help: "HTTP status of random faults.") var faultStatus = 503
    @Option(name: .customLong("api-key"), help: "An accepted API key (repeatable; any key if none).") var apiKeys: [String] = []
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.") var logLevel = "notice"

    func validate() throws {
        guard (0...1).contains(faultRate) else { throw ValidationError("--fault-rate must be within 0...1") }
        guard (400...599).contains(faultStatus) else { throw ValidationError("--fault-status must be 400...599") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
    }

    func run() async throws {
        raiseOpenFileLimit()
        var logger = Logger(label: "sluice-mock-provider")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        let configuration = MockProviderConfiguration(
            host: host, port: port, rpm: rpm, tpm: tpm, rateLimitWindow: .milliseconds(rateWindowMs),
            ttft: .milliseconds(ttftMs), tokensPerSecond: tps, outputTokens: tokens,
            faultRate: faultRate, faultStatus: faultStatus, apiKeys: Set(apiKeys.map(Redacted.init))
        )
        let server = MockProviderServer(configuration: configuration, logger: logger) { host, port in
            print("listening on http://\(host):\(port)")
            fflush(nil)
        }
        try await server.runService()
    }

    /// Raises RLIMIT_NOFILE to its hard limit so thousands of concurrent streams fit.
    private func raiseOpenFileLimit() {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(resource, &limit)
        }
    }
}
