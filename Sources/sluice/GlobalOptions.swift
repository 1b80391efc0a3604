import ArgumentParser
import Foundation
import Logging
import SluicePostgres
import SluiceRedis
import SluiceSupport

/// Options every command shares. Environment: SLUICE_DATABASE_URL, SLUICE_CONFIG,
/// SLUICE_REDIS_URL, SLUICE_LOG_FORMAT.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "PostgreSQL URL (default: $SLUICE_DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .long, help: "Redis URL for rate limits and budgets (default: $SLUICE_REDIS_URL); required by workers when any limit is configured.")
    var redisURL: String?

    @Option(name: .long, help: "Provider configuration file, YAML or JSON (default: $SLUICE_CONFIG).")
    var config: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Log format on stderr: json (one object per line) or text (default: $SLUICE_LOG_FORMAT, else json for `worker`, text for the rest).")
    var logFormat: String?

    /// A logger; the first call bootstraps swift-log for the process with the chosen format
    /// (`--log-format`, else $SLUICE_LOG_FORMAT, else `defaultFormat`).
    func makeLogger(_ label: String, defaultFormat: LogFormat = .text) throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        let formatName = logFormat ?? ProcessInfo.processInfo.environment["SLUICE_LOG_FORMAT"].flatMap { $0.isEmpty ? nil : $0 }
        let format = try formatName.map { name in
            guard let format = LogFormat(rawValue: name) else { throw ValidationError("--log-format must be json or text (got \(name))") }
            return format
        } ?? defaultFormat
        LoggingBootstrap.once(format)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }

    /// Redis from `--redis-url` or $SLUICE_REDIS_URL; nil when neither is set.
    func redisConfiguration() throws -> RedisConfiguration? {
        guard let url = redisURL ?? ProcessInfo.processInfo.environment["SLUICE_REDIS_URL"], !url.isEmpty else { return nil }
        do {
            return try RedisConfiguration(url: url)
        } catch {
            throw ValidationError("--redis-url: \(error)")
        }
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

    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        if let config { environment["SLUICE_CONFIG"] = config }
        return environment
    }
}

/// How log lines are written to stderr.
enum LogFormat: String, Sendable {
    /// One JSON object per line (``JSONLogHandler``): timestamp, level, logger, message, metadata.
    case json
    /// swift-log's human-readable `StreamLogHandler` lines.
    case text
}

enum LoggingBootstrap {
    private static let chosen = Locked<LogFormat?>(nil)

    /// Bootstraps swift-log once per process; later calls (whatever their format) do nothing.
    static func once(_ format: LogFormat) {
        chosen.withLock { chosen in
            guard chosen == nil else { return }
            chosen = format
            switch format {
            case .json: LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
            case .text: LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
            }
        }
    }
}
