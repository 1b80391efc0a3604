import ArgumentParser

struct HTTPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "http", abstract: "Benchmarks for http (not written yet).")

    func run() async throws {
        throw ValidationError("the http benchmark is not written yet")
    }
}
