import ArgumentParser

struct RedisBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "redis", abstract: "Benchmarks for redis (not written yet).")

    func run() async throws {
        throw ValidationError("the redis benchmark is not written yet")
    }
}
