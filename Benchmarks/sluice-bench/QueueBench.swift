import ArgumentParser

struct QueueBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queue", abstract: "Benchmarks for queue (not written yet).")

    func run() async throws {
        throw ValidationError("the queue benchmark is not written yet")
    }
}
