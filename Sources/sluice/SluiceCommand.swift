import ArgumentParser
import Foundation
import Logging
import Sluice

/// `sluice`: the operator CLI and the worker process.
///
/// Exit status: 0 success; 1 failure (the database failed, a job or delivery could not be
/// handled, a replay was refused); 2 usage error (unknown option, malformed value, unknown id,
/// tenant, state or lane; a large replay without --yes in a pipe).
@main
struct SluiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Sluice: a PostgreSQL-backed queue and worker for LLM jobs.",
        discussion: "Exit status: 0 success, 1 failure, 2 usage error (bad option or value, unknown id or tenant).",
        subcommands: [MigrateCommand.self, WorkerCommand.self, WorkersCommand.self, EnqueueCommand.self, JobsCommand.self,
                      ResultsCommand.self, StatsCommand.self, DeadLettersCommand.self, TenantsCommand.self,
                      WebhooksCommand.self, PruneCommand.self, LimitsCommand.self, ModelsCommand.self, RoutesCommand.self]
    )

    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(status(for: error), error)
        }
    }

    /// Usage errors (ArgumentParser's validation and parse errors, ``UsageError``, an unknown id
    /// or tenant, an out-of-range argument) exit 2; other errors 1.
    private static func status(for error: any Error) -> Int32 {
        if error is UsageError { return 2 }
        if let error = error as? SluiceError {
            return [.notFound, .invalidArgument, .invalidSpec].contains(error.code) ? 2 : 1
        }
        let code = exitCode(for: error)
        if code == .validationFailure { return 2 }
        return code.rawValue
    }

    private static func exit(_ status: Int32, _ error: any Error) -> Never {
        if status == 0 {
            // --help, --version: ArgumentParser prints them and exits 0.
            Self.exit(withError: error)
        }
        let message: String
        if error is UsageError {
            message = "Error: \(error)"
        } else if let error = error as? SluiceError {
            message = "Error: " + (error.code == .database ? error.description : error.message)
        } else {
            message = fullMessage(for: error)
        }
        if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
        Foundation.exit(status)
    }
}
