import ArgumentParser

/// `sluice-bench`: the project's benchmarks. Run through `scripts/bench AREA`, which builds in
/// release mode and starts PostgreSQL (fsync on) and Redis; results go to docs/BENCHMARKS.md.
@main
struct SluiceBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-bench",
        abstract: "Sluice benchmarks (run via scripts/bench).",
        subcommands: [PostgresBench.self, RedisBench.self, HTTPBench.self, ProvidersBench.self, MockBench.self, QueueBench.self,
                      LimitsBench.self, WebhookBench.self, InFlightBench.self, SubmittersBench.self]
    )
}
