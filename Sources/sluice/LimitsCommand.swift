import ArgumentParser
import Foundation
import Sluice
import SluiceJSON
import SluicePostgres
import SluiceProviders
import SluiceRedis
import SluiceWorker

/// `sluice limits set|show`: provider/model rate limits (stored in `sluice.model_limits`; every
/// worker applies a change on its next admission) and what the shared buckets hold now.
struct LimitsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limits", abstract: "Set and show rate limits, bucket levels and cooldowns.", subcommands: [Set.self, Show.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a provider/model's limits (per minute; 0 removes a limit). Applies on every worker's next admission.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Provider name (e.g. openai).") var provider: String
        @Option(name: .long, help: "Model name (e.g. gpt-4o).") var model: String
        @Option(name: .long, help: "Requests per minute.") var rpm: Int?
        @Option(name: .long, help: "Tokens per minute (input + output).") var tpm: Int?
        @Option(name: .long, help: "Input tokens per minute (providers that limit input separately).") var inputTpm: Int?
        @Option(name: .long, help: "Output tokens per minute.") var outputTpm: Int?
        @Option(name: .long, help: "The limits of one API key of the provider (its id in the configuration's api_keys; a key pool: each call takes the key with the most room).") var keyId: String?
        @Flag(name: .long, help: "Print the stored row as JSON.") var json = false

        func validate() throws {
            for (flag, value) in [("--rpm", rpm), ("--tpm", tpm), ("--input-tpm", inputTpm), ("--output-tpm", outputTpm)] {
                if let value, value < 0 { throw ValidationError("\(flag) must be 0 (no limit) or a positive number (got \(value))") }
            }
            if let keyId, !ModelLimits.isKeyID(keyId) {
                throw ValidationError("--key-id must match ^[a-z0-9][a-z0-9_.-]{0,62}$ (a key's id, never the key itself)")
            }
            if rpm == nil && tpm == nil && inputTpm == nil && outputTpm == nil {
                throw ValidationError("give at least one of --rpm, --tpm, --input-tpm, --output-tpm")
            }
        }

        func run() async throws {
            let logger = try options.makeLogger("sluice.limits")
            let postgres = PostgresClient(configuration: try options.postgresConfiguration(), logger: logger)
            defer { Task { await postgres.shutdown() } }
            let store = JobStore(postgres: postgres)
            try await ModelCheck.ensureKnown(provider: provider, model: model, store: store, options: options)
            let row = try await store.setModelLimits(provider: provider, model: model, rpm: rpm, tpm: tpm,
                                                     inputTPM: inputTpm, outputTPM: outputTpm, keyID: keyId)
            await postgres.shutdown()
            if json {
                var w = JSONWriter()
                LimitsPrinter.write(row, levels: nil, to: &w)
                print(String(decoding: w.bytes, as: UTF8.self))
            } else {
                print("\(row.provider)/\(row.model)\(row.keyID.map { " key \($0)" } ?? ""): \(LimitsPrinter.describe(row))")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show configured limits and, with Redis, current bucket levels and cooldowns.")
        @OptionGroup var options: GlobalOptions
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            let logger = try options.makeLogger("sluice.limits")
            let postgres = PostgresClient(configuration: try options.postgresConfiguration(), logger: logger)
            let store = JobStore(postgres: postgres)
            let fileLimits = (try? ProvidersConfiguration.load(environment: options.environment))?.modelLimits ?? []
            var snapshot: LimitsSnapshot
            do {
                snapshot = try await store.limitsSnapshot()
            } catch {
                await postgres.shutdown()
                throw error
            }
            await postgres.shutdown()
            let fromDatabase = snapshot.models.count
            snapshot.addFileLimits(fileLimits)
            let fromFile = Array(snapshot.models.dropFirst(fromDatabase))
            var levels: [String: [String: Double]] = [:]
            var cooldowns: [String: Double] = [:]
            var breakers: [String: (open: Double?, failures: Int)] = [:]
            if let redisConfiguration = try options.redisConfiguration() {
                let redis = RedisClient(configuration: redisConfiguration, logger: logger)
                let limiter = RateLimiter(redis: redis)
                func read(_ scope: String, _ kind: String, _ perMinute: Int?) async throws {
                    guard let perMinute else { return }
                    let level = try await limiter.level(of: limiter.key("rl", scope, kind), capacity: Double(perMinute),
                                                        refillPerMillisecond: Double(perMinute) / 60_000)
                    levels[scope, default: [:]][kind] = level
                }
                do {
                    for m in snapshot.models {
                        if let key = m.keyID {
                            // One key of a key pool: its buckets and its own cooldown.
                            let name = "\(m.provider)/\(m.model):\(key)"
                            try await read("m:" + name, "rpm", m.rpm)
                            try await read("m:" + name, "tpm", m.tpm)
                            try await read("m:" + name, "itpm", m.inputTPM)
                            try await read("m:" + name, "otpm", m.outputTPM)
                            if let left = try await limiter.cooldownRemaining(limiter.key("cool", "\(m.provider)/\(m.model)", key)) {
                                cooldowns[name] = left.secondsValue
                            }
                            continue
                        }
                        let name = "\(m.provider)/\(m.model)"
                        try await read("m:" + name, "rpm", m.rpm)
                        try await read("m:" + name, "tpm", m.tpm)
                        try await read("m:" + name, "itpm", m.inputTPM)
                        try await read("m:" + name, "otpm", m.outputTPM)
                        if let left = try await limiter.cooldownRemaining(limiter.key("cool", name)) {
                            cooldowns[name] = left.secondsValue
                        }
                        let breaker = try await limiter.breakerState(limiter.key("brk", name))
                        breakers[name] = (breaker.openFor?.secondsValue, breaker.failures)
                    }
                    for t in snapshot.tenants {
                        try await read("t:" + t.tenant, "rpm", t.rpm)
                        try await read("t:" + t.tenant, "tpm", t.tpm)
                    }
                } catch {
                    await redis.shutdown()
                    throw ValidationError("Redis cannot be reached to read bucket levels: \(error)")
                }
                await redis.shutdown()
            }
            if json {
                var w = JSONWriter()
                w.beginObject()
                w.key("models")
                w.beginArray()
                for m in snapshot.models {
                    let name = "\(m.provider)/\(m.model)" + (m.keyID.map { ":" + $0 } ?? "")
                    LimitsPrinter.write(m, levels: levels["m:" + name], cooldown: cooldowns[name], breaker: m.keyID == nil ? breakers[name] : nil,
                                        source: fromFile.contains(m) ? "file" : "database", to: &w)
                }
                w.endArray()
                w.key("tenants")
                w.beginArray()
                for t in snapshot.tenants { LimitsPrinter.write(t, levels: levels["t:" + t.tenant], to: &w) }
                w.endArray()
                w.field("redis", try options.redisConfiguration() != nil)
                w.endObject()
                print(String(decoding: w.bytes, as: UTF8.self))
                return
            }
            print("MODEL LIMITS (per minute)")
            if snapshot.models.isEmpty { print("  none") }
            for m in snapshot.models {
                let name = "\(m.provider)/\(m.model)" + (m.keyID.map { ":" + $0 } ?? "")
                var line = "  \(m.provider)/\(m.model)\(m.keyID.map { " key \($0)" } ?? ""): \(LimitsPrinter.describe(m))"
                if let l = levels["m:" + name], !l.isEmpty {
                    line += "   now: " + l.sorted(by: { $0.key < $1.key }).map { "\($0.key) \(Int($0.value.rounded(.down)))" }.joined(separator: ", ")
                }
                if let c = cooldowns[name] { line += String(format: "   cooldown %.1fs", c) }
                if let b = breakers[name] {
                    if let open = b.open { line += String(format: "   BREAKER OPEN %.1fs", open) }
                    else if b.failures > 0 { line += "   breaker closed (\(b.failures) recent failures)" }
                }
                if fromFile.contains(m) { line += "   (configuration file)" }
                print(line)
            }
            print("TENANTS WITH LIMITS OR BUDGETS")
            if snapshot.tenants.isEmpty { print("  none") }
            for t in snapshot.tenants {
                var parts: [String] = []
                if let v = t.rpm { parts.append("rpm \(v)") }
                if let v = t.tpm { parts.append("tpm \(v)") }
                if let v = t.dailyTokens { parts.append("daily tokens \(t.spentDayTokens)/\(v)") }
                if let v = t.monthlyTokens { parts.append("monthly tokens \(t.spentMonthTokens)/\(v)") }
                if let v = t.dailyUSD { parts.append(String(format: "daily $%.4f/$%.2f", t.spentDayUSD, v)) }
                if let v = t.monthlyUSD { parts.append(String(format: "monthly $%.4f/$%.2f", t.spentMonthUSD, v)) }
                print("  \(t.tenant): " + (parts.isEmpty ? "soft budgets only" : parts.joined(separator: ", ")))
            }
        }
    }
}

/// `sluice models pause|resume P/M`: the kill switch of one provider/model.
struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "Pause and resume a provider/model (kill switch).", subcommands: [Pause.self, Resume.self])

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop new starts of PROVIDER/MODEL at once (calls in flight finish).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "provider/model, e.g. openai/gpt-4o") var target: String

        func run() async throws {
            try await ModelsCommand.set(target, paused: true, options: options)
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let PROVIDER/MODEL start jobs again; its waiting jobs run at once.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "provider/model, e.g. openai/gpt-4o") var target: String

        func run() async throws {
            try await ModelsCommand.set(target, paused: false, options: options)
        }
    }

    static func set(_ target: String, paused: Bool, options: GlobalOptions) async throws {
        let parts = target.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw ValidationError("PROVIDER/MODEL: expected provider/model, e.g. openai/gpt-4o (got \(target))")
        }
        let logger = try options.makeLogger("sluice.models")
        let postgres = PostgresClient(configuration: try options.postgresConfiguration(), logger: logger)
        let store = JobStore(postgres: postgres)
        do {
            try await ModelCheck.ensureKnown(provider: parts[0], model: parts[1], store: store, options: options)
            _ = try await store.setModelLimits(provider: parts[0], model: parts[1], paused: paused)
            let woken = paused ? 0 : try await store.wakeDeferred(provider: parts[0], model: parts[1])
            await postgres.shutdown()
            print(paused ? "\(target): paused (no new starts; calls in flight finish)"
                         : "\(target): resumed (\(woken) waiting jobs runnable now)")
        } catch {
            await postgres.shutdown()
            throw error
        }
    }
}

/// Refuses limits for a provider/model nothing could ever run: the provider must be registered
/// (`sluice.providers`) and the model known to it (`sluice.models`), as enqueue requires.
enum ModelCheck {
    static func ensureKnown(provider: String, model: String, store: JobStore, options: GlobalOptions) async throws {
        let known = try await store.registeredModels()
        guard let models = known[provider] else {
            throw ValidationError("--provider: unknown provider \(provider); known: \(known.keys.sorted().joined(separator: ", "))")
        }
        guard models.contains(model) else {
            throw ValidationError("--model: provider \(provider) has no model \(model) (registered by workers from the price table and configuration)")
        }
    }
}

enum LimitsPrinter {
    static func describe(_ m: ModelLimits) -> String {
        var parts: [String] = []
        if let v = m.rpm { parts.append("rpm \(v)") }
        if let v = m.tpm { parts.append("tpm \(v)") }
        if let v = m.inputTPM { parts.append("input tpm \(v)") }
        if let v = m.outputTPM { parts.append("output tpm \(v)") }
        if parts.isEmpty { parts.append("no rate limits") }
        if m.paused { parts.append("PAUSED") }
        return parts.joined(separator: ", ")
    }

    static func write(_ m: ModelLimits, levels: [String: Double]?, cooldown: Double? = nil,
                      breaker: (open: Double?, failures: Int)? = nil, source: String = "database", to w: inout JSONWriter) {
        w.beginObject()
        w.field("provider", m.provider)
        w.field("model", m.model)
        w.field("key_id", m.keyID)
        w.field("rpm", m.rpm)
        w.field("tpm", m.tpm)
        w.field("input_tpm", m.inputTPM)
        w.field("output_tpm", m.outputTPM)
        w.field("paused", m.paused)
        w.field("source", source)
        writeLevels(levels, to: &w)
        w.field("cooldown_seconds", cooldown)
        if let breaker {
            w.key("breaker")
            w.beginObject()
            w.field("state", breaker.open == nil ? "closed" : "open")
            w.field("open_seconds", breaker.open)
            w.field("failures", breaker.failures)
            w.endObject()
        }
        w.endObject()
    }

    static func write(_ t: TenantLimits, levels: [String: Double]?, to w: inout JSONWriter) {
        w.beginObject()
        w.field("tenant", t.tenant)
        w.field("rpm", t.rpm)
        w.field("tpm", t.tpm)
        w.field("daily_tokens", t.dailyTokens)
        w.field("monthly_tokens", t.monthlyTokens)
        w.field("daily_usd", t.dailyUSD)
        w.field("monthly_usd", t.monthlyUSD)
        w.field("spent_day_tokens", t.spentDayTokens)
        w.field("spent_month_tokens", t.spentMonthTokens)
        w.field("spent_day_usd", t.spentDayUSD)
        w.field("spent_month_usd", t.spentMonthUSD)
        writeLevels(levels, to: &w)
        w.endObject()
    }

    static func writeLevels(_ levels: [String: Double]?, to w: inout JSONWriter) {
        guard let levels else { return }
        w.key("levels")
        w.beginObject()
        for (kind, level) in levels.sorted(by: { $0.key < $1.key }) { w.field(kind, level) }
        w.endObject()
    }
}

extension Duration {
    var secondsValue: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
