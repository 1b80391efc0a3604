import ArgumentParser
import Foundation
import Logging
import SluiceRedis
import SluiceSupport

/// `sluice-bench redis`: SluiceRedis throughput and latency against a local redis-server, next
/// to `redis-benchmark` on the same server for comparison. Run via `scripts/bench redis`.
///
/// Every scenario is bounded by `--seconds` (wall time) and `--max-ops`; loads go to the
/// server named by `SLUICE_BENCH_REDIS_URL` (127.0.0.1 only).
struct RedisBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "SluiceRedis: actor-hop cost, SET/GET (plain, pipelined), EVALSHA token bucket; plus redis-benchmark."
    )

    @Option(help: "Seconds per scenario.")
    var seconds: Double = 3

    @Option(help: "Upper bound on operations per scenario.")
    var maxOps: Int = 2_000_000

    @Option(help: "Redis URL (default: $SLUICE_BENCH_REDIS_URL).")
    var url: String?

    @Flag(help: "Skip the redis-benchmark comparison.")
    var skipRedisBenchmark = false

    func run() async throws {
        guard let url = url ?? ProcessInfo.processInfo.environment["SLUICE_BENCH_REDIS_URL"] else {
            throw ValidationError("set SLUICE_BENCH_REDIS_URL or pass --url (scripts/bench redis does this)")
        }
        let configuration = try RedisConfiguration(url: url)
        guard ["127.0.0.1", "localhost", "::1"].contains(configuration.host) else {
            throw ValidationError("benchmarks only run against a loopback Redis")
        }
        var logger = Logger(label: "sluice.bench.redis")
        logger.logLevel = .warning
        let limit = RedisBenchLimit(duration: .milliseconds(Int64(seconds * 1000)), maxOps: maxOps)
        let prefix = "sluice-bench:redis:\(UUID().uuidString):"
        var rows: [RedisBenchRow] = []

        print("SluiceRedis benchmark against \(configuration.serverLabelForBench); \(ProcessInfo.processInfo.activeProcessorCount) cores")

        // 1. The cost of the executor hop alone (no Redis): an empty isolated method call.
        rows.append(await RedisBenchHop.measure(name: "hop: empty call on ThreadExecutor actor", limit: limit) { probe in _ = await probe.noop() })
        rows.append(await RedisBenchHop.measureDefault(name: "hop: empty call on default actor", limit: limit))

        // 2. Plain commands on one connection, one caller.
        let connection = try await RedisConnection.connect(configuration: configuration, logger: logger)
        rows.append(try await measure("PING, 1 caller (RedisConnection)", callers: 1, opsPerCall: 1, limit: limit) { _, _ in
            _ = try await connection.command(["PING"])
        })
        let value = String(repeating: "x", count: 64)
        rows.append(try await measure("SET+GET 64 B, 1 caller (no pipelining)", callers: 1, opsPerCall: 2, limit: limit) { _, i in
            let key = prefix + "kv:\(i % 1000)"
            _ = try await connection.command(["SET", key, value])
            _ = try await connection.command(["GET", key])
        })
        for depth in [16, 100] {
            rows.append(try await measure("SET pipeline of \(depth), 1 caller", callers: 1, opsPerCall: depth, limit: limit) { _, i in
                let commands = (0..<depth).map { ["SET", prefix + "p:\((i * depth + $0) % 1000)", value] }
                _ = try await connection.pipeline(commands)
            })
        }

        // 3. Through the pool with 16 concurrent callers.
        let client16 = RedisClient(configuration: configuration, pool: .init(maxConnections: 16), logger: logger)
        let client8 = RedisClient(configuration: configuration, pool: .init(maxConnections: 8), logger: logger)
        rows.append(try await measure("SET+GET 64 B, 16 callers, pool 16", callers: 16, opsPerCall: 2, limit: limit) { c, i in
            let key = prefix + "kv:\(c):\(i % 100)"
            _ = try await client16.command(["SET", key, value])
            _ = try await client16.command(["GET", key])
        })

        // 4. The rate limiter's shape: one EVALSHA per admission, server clock, one hash-tagged key.
        let bucket = RedisBenchTokenBucket.script
        rows.append(try await measure("EVALSHA token bucket, 1 caller (RedisConnection)", callers: 1, opsPerCall: 1, limit: limit) { _, i in
            _ = try await connection.eval(bucket, keys: [prefix + "{tb\(i % 16)}:bucket"], args: ["1000000", "100000", "1"])
        })
        rows.append(try await measure("EVALSHA token bucket, 1 caller (RedisClient)", callers: 1, opsPerCall: 1, limit: limit) { _, i in
            _ = try await client16.eval(bucket, keys: [prefix + "{tb\(i % 16)}:bucket"], args: ["1000000", "100000", "1"])
        })
        rows.append(try await measure("EVALSHA token bucket, 16 callers, pool 16", callers: 16, opsPerCall: 1, limit: limit) { c, _ in
            _ = try await client16.eval(bucket, keys: [prefix + "{tb\(c)}:bucket"], args: ["1000000", "100000", "1"])
        })
        rows.append(try await measure("EVALSHA token bucket, 16 callers, pool 8", callers: 16, opsPerCall: 1, limit: limit) { c, _ in
            _ = try await client8.eval(bucket, keys: [prefix + "{tb\(c)}:bucket"], args: ["1000000", "100000", "1"])
        })

        // Clean up our keys.
        let keys = try await connection.command(["KEYS", prefix + "*"]).array?.compactMap(\.string) ?? []
        for chunk in stride(from: 0, to: keys.count, by: 500) {
            _ = try await connection.command(["DEL"] + keys[chunk..<min(chunk + 500, keys.count)])
        }
        await connection.close()
        await client16.shutdown()
        await client8.shutdown()

        print("")
        print("| scenario | ops | ops/s | p50 µs | p99 µs |")
        print("|---|---:|---:|---:|---:|")
        for row in rows { print(row.markdown) }

        if !skipRedisBenchmark {
            print("")
            print("redis-benchmark on the same server (C client, for comparison):")
            for extra in [[], ["-P", "16"], ["-c", "1"]] {
                let arguments = ["-h", "127.0.0.1", "-p", String(configuration.port), "-q", "-t", "set,get", "-n", "200000"] + extra
                print("$ redis-benchmark \(arguments.joined(separator: " "))")
                for line in try RedisBenchProcess.run("/usr/bin/redis-benchmark", arguments) { print("  \(line)") }
            }
        }
    }

    /// Runs `body` from `callers` concurrent tasks until the time or op budget is spent;
    /// records one latency sample per call.
    private func measure(
        _ name: String, callers: Int, opsPerCall: Int, limit: RedisBenchLimit,
        _ body: @escaping @Sendable (_ caller: Int, _ iteration: Int) async throws -> Void
    ) async throws -> RedisBenchRow {
        // Warm-up: connections opened, scripts loaded.
        for c in 0..<callers { try await body(c, 0) }
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start.advanced(by: limit.duration)
        let callsPerCaller = max(1, limit.maxOps / opsPerCall / callers)
        let samples = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for c in 0..<callers {
                group.addTask {
                    var local: [Int64] = []
                    local.reserveCapacity(min(callsPerCaller, 1 << 20))
                    var i = 1
                    while i <= callsPerCaller {
                        let t0 = clock.now
                        try await body(c, i)
                        let t1 = clock.now
                        local.append(RedisBenchRow.nanoseconds(t1 - t0))
                        if t1 >= deadline { break }
                        i += 1
                    }
                    return local
                }
            }
            var all: [Int64] = []
            for try await part in group { all += part }
            return all
        }
        let elapsed = clock.now - start
        return RedisBenchRow(name: name, calls: samples, opsPerCall: opsPerCall, elapsed: elapsed)
    }
}

struct RedisBenchLimit: Sendable {
    var duration: Duration
    var maxOps: Int
}

struct RedisBenchRow: Sendable {
    var name: String
    var ops: Int
    var opsPerSecond: Double
    var p50: Double
    var p99: Double

    init(name: String, calls: [Int64], opsPerCall: Int, elapsed: Duration) {
        let sorted = calls.sorted()
        self.name = name
        self.ops = calls.count * opsPerCall
        self.opsPerSecond = Double(ops) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1000
        }
        self.p50 = percentile(0.50)
        self.p99 = percentile(0.99)
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }

    var markdown: String {
        "| \(name) | \(ops) | \(Int(opsPerSecond.rounded())) | \(String(format: "%.1f", p50)) | \(String(format: "%.1f", p99)) |"
    }
}

/// Measures the actor hop alone: a task calling an empty isolated method.
enum RedisBenchHop {
    actor ThreadProbe {
        let executor = ThreadExecutor(name: "bench-hop")
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
        var counter = 0
        /// Touches isolated state so the optimiser cannot drop the hop.
        func noop() -> Int {
            counter += 1
            return counter
        }
        deinit { executor.shutdown() }
    }

    actor DefaultProbe {
        var counter = 0
        func noop() -> Int {
            counter += 1
            return counter
        }
    }

    static func measure(name: String, limit: RedisBenchLimit, _ call: @Sendable (ThreadProbe) async -> Void) async -> RedisBenchRow {
        let probe = ThreadProbe()
        return await loop(name: name, limit: limit) { await call(probe) }
    }

    static func measureDefault(name: String, limit: RedisBenchLimit) async -> RedisBenchRow {
        let probe = DefaultProbe()
        return await loop(name: name, limit: limit) { _ = await probe.noop() }
    }

    private static func loop(name: String, limit: RedisBenchLimit, _ call: () async -> Void) async -> RedisBenchRow {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start.advanced(by: limit.duration)
        var samples: [Int64] = []
        samples.reserveCapacity(min(limit.maxOps, 1 << 20))
        for _ in 0..<limit.maxOps {
            let t0 = clock.now
            await call()
            let t1 = clock.now
            samples.append(RedisBenchRow.nanoseconds(t1 - t0))
            if t1 >= deadline { break }
        }
        return RedisBenchRow(name: name, calls: samples, opsPerCall: 1, elapsed: clock.now - start)
    }
}

/// A token bucket admission step: refill by elapsed server time, take `cost` if available.
enum RedisBenchTokenBucket {
    static let script = RedisScript(
        """
        local capacity = tonumber(ARGV[1])
        local rate = tonumber(ARGV[2])
        local cost = tonumber(ARGV[3])
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
        local tokens = tonumber(state[1]) or capacity
        local ts = tonumber(state[2]) or now
        tokens = math.min(capacity, tokens + (now - ts) * rate / 1000000)
        local allowed = 0
        if tokens >= cost then
          tokens = tokens - cost
          allowed = 1
        end
        redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
        redis.call('PEXPIRE', KEYS[1], 60000)
        return {allowed, tostring(tokens)}
        """)
}

enum RedisBenchProcess {
    /// Runs a program to completion and returns its output lines (progress lines dropped).
    static func run(_ path: String, _ arguments: [String]) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        while process.isRunning { usleep(10_000) }
        return String(decoding: data, as: UTF8.self)
            .split(whereSeparator: { $0 == "\r" || $0 == "\n" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.contains("requests per second") }
    }
}

extension RedisConfiguration {
    fileprivate var serverLabelForBench: String { "\(host):\(port)" }
}
