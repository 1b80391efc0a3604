import ArgumentParser

struct PostgresBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "postgres", abstract: "Benchmarks for postgres (not written yet).")

    func run() async throws {
        throw ValidationError("the postgres benchmark is not written yet")
    }
}
