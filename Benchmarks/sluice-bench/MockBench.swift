import ArgumentParser

struct MockBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mock", abstract: "Benchmarks for mock (not written yet).")

    func run() async throws {
        throw ValidationError("the mock benchmark is not written yet")
    }
}
