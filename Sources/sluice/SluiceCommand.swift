import ArgumentParser
import Logging

/// `sluice`: the operator CLI and the worker process.
@main
struct SluiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Sluice: a PostgreSQL-backed queue and worker for LLM jobs.",
        subcommands: [MigrateCommand.self, WorkerCommand.self, WorkersCommand.self, EnqueueCommand.self, JobsCommand.self,
                      LimitsCommand.self, ModelsCommand.self]
    )
}
