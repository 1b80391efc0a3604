import ArgumentParser
import Foundation
import Logging
import SluicePostgres
import SluiceRedis

/// Options every command shares. Environment: SLUICE_DATABASE_URL, SLUICE_CONFIG.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "PostgreSQL URL (default: $SLUICE_DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .long, help: "Redis URL for rate limits and budgets (default: $SLUICE_REDIS_URL); required by workers when any limit is configured.")
    var redisURL: String?

    @Option(name: .long, help: "Provider configuration file, YAML or JSON (default: $SLUICE_CONFIG).")
    var config: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func makeLogger(_ label: String) throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingBootstrap.once()
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }

    func postgresConfiguration() throws -> PostgresConfiguration {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["SLUICE_DATABASE_URL"], !url.isEmpty else {
            throw ValidationError("no database: pass --database-url or set SLUICE_DATABASE_URL")
        }
        do {
            return try PostgresConfiguration(url: url)
        } catch {
            throw ValidationError("--database-url: \(error)")
        }
    }

    /// The Redis server of the limiter, nil when neither --redis-url nor SLUICE_REDIS_URL is set.
    func redisConfiguration() throws -> RedisConfiguration? {
        guard let url = redisURL ?? ProcessInfo.processInfo.environment["SLUICE_REDIS_URL"], !url.isEmpty else { return nil }
        do {
            return try RedisConfiguration(url: url)
        } catch {
            throw ValidationError("--redis-url: \(error)")
        }
    }

    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        if let config { environment["SLUICE_CONFIG"] = config }
        return environment
    }
}

enum LoggingBootstrap {
    private static let done: Void = {
        LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
    }()

    static func once() { _ = done }
}
