import ArgumentParser

struct ProvidersBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "providers", abstract: "Benchmarks for providers (not written yet).")

    func run() async throws {
        throw ValidationError("the providers benchmark is not written yet")
    }
}
