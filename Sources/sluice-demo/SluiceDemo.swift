import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Sluice
import SluiceHTTP
import SluiceJSON
import SluiceMockProvider
import SluicePostgres
import UnixSignals

/// `sluice-demo`: the embedded demo that `scripts/demo` runs. Against a PostgreSQL and Redis it
/// is given (scripts/demo starts throwaway ones), it starts the mock provider and a webhook
/// receiver in-process, sets up three tenants and model limits with the `sluice` CLI, runs
/// `sluice worker --processes 2`, enqueues a mixed workload with the Sluice library, shows live
/// progress and prints a report. Exits 0 when every job reached a terminal state with its
/// result and every webhook signature verified; 1 otherwise; 130 when interrupted.
@main
struct SluiceDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-demo", abstract: "The Sluice demo (run it through scripts/demo).")

    @Option(help: "PostgreSQL URL (default $SLUICE_DATABASE_URL).") var databaseURL: String?
    @Option(help: "Redis URL (default $SLUICE_REDIS_URL).") var redisURL: String?
    @Option(help: "The sluice executable (default: next to this one).") var sluice: String?
    @Option(help: "Directory for the worker configuration and log (default: a temporary directory, removed afterwards).") var runDir: String?
    @Flag(help: "The short demo (about 250 jobs, under a minute).") var short = false

    func run() async throws {
        // Progress is for people watching: one line at a time also when stdout is a pipe or a file.
        setLineBuffered()
        let environment = ProcessInfo.processInfo.environment
        guard let databaseURL = databaseURL ?? environment["SLUICE_DATABASE_URL"],
              let redisURL = redisURL ?? environment["SLUICE_REDIS_URL"] else {
            throw ValidationError("--database-url and --redis-url (or SLUICE_DATABASE_URL and SLUICE_REDIS_URL) are required; scripts/demo sets them")
        }
        let sluicePath = sluice ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sluice").path
        guard FileManager.default.isExecutableFile(atPath: sluicePath) else {
            throw ValidationError("--sluice: no executable at \(sluicePath)")
        }
        let ownDir = runDir == nil
        let dir = runDir ?? NSTemporaryDirectory() + "sluice-demo-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let demo = Demo(plan: .make(short: short), databaseURL: databaseURL, redisURL: redisURL, sluicePath: sluicePath, dir: dir)

        // Ctrl-C or SIGTERM: stop the run; the demo still stops its workers and servers.
        let outcome: Demo.Outcome = await withTaskGroup(of: Demo.Outcome?.self) { group in
            group.addTask { await demo.run() }
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) { return .interrupted }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .interrupted
        }
        await demo.cleanup()
        if ownDir { try? FileManager.default.removeItem(atPath: dir) }
        switch outcome {
        case .passed: return
        case .failed: throw ExitCode(1)
        case .interrupted:
            print("\ninterrupted: workers, mock provider and webhook receiver stopped")
            throw ExitCode(130)
        }
    }
}
