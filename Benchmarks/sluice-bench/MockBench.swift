import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import SluiceSupport

#if canImport(Glibc)
import Glibc
#endif

/// `sluice-bench mock`: starts `sluice-mock-provider --port 0` as a child process and holds
/// N concurrent streaming requests (~2 s each, half OpenAI, half Anthropic) per level,
/// reporting the mock's RSS and CPU (from /proc) and how many streams completed.
///
/// The load comes from a one-thread SwiftNIO client in this process (raw HTTP/1.1, one
/// connection per stream), so the figures are the mock's, not a client library's.
struct MockBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock",
        abstract: "Mock provider: N concurrent ~2 s streams; the mock's RSS/CPU and completion counts."
    )

    @Option(help: "Comma-separated concurrency levels.") var levels = "1000,5000,10000"
    @Option(help: "Tokens per stream.") var tokens = 8
    @Option(name: .customLong("ttft-ms"), help: "Time to first token per stream (ms).") var ttftMs = 250
    @Option(help: "Tokens per second per stream.") var tps = 4.0
    @Option(name: .customLong("connect-batch"), help: "Connections opened before awaiting them.") var connectBatch = 500
    @Option(help: "Path of sluice-mock-provider (default: $SLUICE_BIN_DIR/sluice-mock-provider).") var binary: String?

    func run() async throws {
        let limit = mockBenchRaiseFileLimit()
        guard let binary = binary ?? ProcessInfo.processInfo.environment["SLUICE_BIN_DIR"].map({ $0 + "/sluice-mock-provider" }) else {
            throw ValidationError("set SLUICE_BIN_DIR (scripts/bench does) or pass --binary")
        }
        let levels = self.levels.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard let maxLevel = levels.max(), maxLevel + 100 < limit else {
            throw ValidationError("open-file limit \(limit) is too low for \(self.levels)")
        }
        let mock = try MockBenchChild(binary: binary)
        defer { mock.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = MockBenchClient(group: group, port: mock.port)
        let directive = "tokens=\(tokens),ttft_ms=\(ttftMs),tps=\(tps)"
        let nominal = Double(ttftMs) / 1000 + Double(max(0, tokens - 1)) / tps

        print("mock pid \(mock.pid), port \(mock.port); streams: \(directive) (nominal \(String(format: "%.2f", nominal)) s each)")
        print("| streams | completed | failed | wall s | p50 s | p99 s | peak concurrent (mock) | mock CPU s | mock CPU % | mock RSS MiB (peak in level) | mock RSS MiB after |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        let idle = mock.usage()
        print("idle mock: RSS \(idle.rssKiB / 1024) MiB, threads \(idle.threads)")
        for level in levels {
            _ = try await client.fetch(method: "POST", path: "/admin/reset")
            let before = mock.usage()
            let sampler = Task {
                var peak = 0
                while !Task.isCancelled {
                    peak = max(peak, mock.usage().rssKiB)
                    try? await Task.sleep(for: .milliseconds(100))
                }
                return peak
            }
            let clock = ContinuousClock()
            let started = clock.now
            for i in 0..<level {
                client.stream(anthropic: i % 2 == 1, directive: directive)
                if (i + 1) % connectBatch == 0 {
                    // Wait for this batch's connections before opening more (not for the streams).
                    await client.awaitConnected()
                }
            }
            let results = try await client.collectAll()
            let wall = (clock.now - started).seconds
            sampler.cancel()
            let peakRSS = await sampler.value
            let after = mock.usage()
            let stats = try await client.fetch(method: "GET", path: "/admin/stats")
            let peakConcurrent = (try? JSONSerialization.jsonObject(with: Data(stats.utf8)) as? [String: Any])?["peak_concurrent_streams"] as? Int ?? -1
            let ok = results.filter(\.ok)
            let durations = ok.map(\.seconds).sorted()
            func pct(_ p: Double) -> Double { durations.isEmpty ? 0 : durations[min(durations.count - 1, Int(Double(durations.count) * p))] }
            let cpu = after.cpuSeconds - before.cpuSeconds
            print(String(
                format: "| %d | %d | %d | %.2f | %.2f | %.2f | %d | %.2f | %.0f%% | %.0f | %.0f |",
                level, ok.count, results.count - ok.count, wall, pct(0.5), pct(0.99), peakConcurrent, cpu, 100 * cpu / wall,
                Double(peakRSS) / 1024, Double(after.rssKiB) / 1024
            ))
            try await Task.sleep(for: .milliseconds(500))
        }
        try await group.shutdownGracefully()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Raises the soft open-file limit to the hard limit and returns it.
private func mockBenchRaiseFileLimit() -> Int {
    var limit = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    return Int(limit.rlim_cur)
}

/// The mock provider as a child process.
private final class MockBenchChild: Sendable {
    let process: Process
    let port: Int
    var pid: Int32 { process.processIdentifier }

    init(binary: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--port", "0", "--log-level", "error"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(10)
        while !text.contains("\n"), Date() < deadline {
            let data = pipe.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on http://") }),
            let port = line.split(separator: ":").last.flatMap({ Int($0) })
        else {
            process.terminate()
            throw ValidationError("sluice-mock-provider did not print its port (got: \(text))")
        }
        self.process = process
        self.port = port
    }

    struct Usage {
        var cpuSeconds: Double
        var rssKiB: Int
        var threads: Int
    }

    /// CPU (utime + stime from /proc/PID/stat) and RSS/threads (from /proc/PID/status).
    func usage() -> Usage {
        var cpu = 0.0, rss = 0, threads = 0
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        {
            // Fields after "(comm)": state is field 3, utime 14, stime 15.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) {
                cpu = (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard parts.count >= 2, let value = Int(parts[1]) else { continue }
                if parts[0] == "VmRSS:" { rss = value }
                if parts[0] == "Threads:" { threads = value }
            }
        }
        return Usage(cpuSeconds: cpu, rssKiB: rss, threads: threads)
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

/// A minimal SwiftNIO HTTP/1.1 client: one connection per request, `Connection: close`, the
/// response read until the server closes.
private final class MockBenchClient: Sendable {
    struct StreamResult: Sendable {
        var ok: Bool
        var seconds: Double
    }

    let group: MultiThreadedEventLoopGroup
    let port: Int
    private let connects = Locked<[EventLoopFuture<any Channel>]>([])
    private let results = Locked<[EventLoopFuture<StreamResult>]>([])

    init(group: MultiThreadedEventLoopGroup, port: Int) {
        self.group = group
        self.port = port
    }

    /// Opens a streaming request; the future completes when the server has closed the connection.
    func stream(anthropic: Bool, directive: String) {
        let body = anthropic
            ? "{\"model\":\"bench\",\"max_tokens\":64,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hello from the benchmark\"}]}"
            : "{\"model\":\"bench\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hello from the benchmark\"}]}"
        let path = anthropic ? "/v1/messages" : "/v1/chat/completions"
        let auth = anthropic ? "x-api-key: bench\r\nanthropic-version: 2023-06-01\r\n" : "Authorization: Bearer bench\r\n"
        let request = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\(auth)x-mock: \(directive)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let marker = anthropic ? "message_stop" : "[DONE]"
        let started = NIODeadline.now()
        let promise = group.next().makePromise(of: String.self)
        let connect = ClientBootstrap(group: group)
            .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MockBenchCollector(promise: promise, keep: 512))
                }
            }
            .connect(host: "127.0.0.1", port: port)
        connect.whenSuccess { channel in
            channel.writeAndFlush(ByteBuffer(string: request), promise: nil)
        }
        connect.whenFailure { promise.fail($0) }
        connects.withLock { $0.append(connect) }
        let result = promise.futureResult.map { tail in
            let seconds = Double((NIODeadline.now() - started).nanoseconds) / 1e9
            return StreamResult(ok: tail.contains(marker) && tail.hasSuffix("0\r\n\r\n"), seconds: seconds)
        }.recover { _ in StreamResult(ok: false, seconds: 0) }
        results.withLock { $0.append(result) }
    }

    /// Waits until every connection opened so far is established (or failed).
    func awaitConnected() async {
        let pending = connects.withLock { value in
            defer { value.removeAll() }
            return value
        }
        for future in pending { _ = try? await future.get() }
    }

    /// Waits for every stream started so far and returns their results.
    func collectAll() async throws -> [StreamResult] {
        await awaitConnected()
        let pending = results.withLock { value in
            defer { value.removeAll() }
            return value
        }
        var all: [StreamResult] = []
        all.reserveCapacity(pending.count)
        for future in pending { all.append(try await future.get()) }
        return all
    }

    /// A small request; returns the response body text (everything after the head).
    func fetch(method: String, path: String) async throws -> String {
        let promise = group.next().makePromise(of: String.self)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MockBenchCollector(promise: promise, keep: 1 << 20))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
        let response = try await promise.futureResult.get()
        guard let range = response.range(of: "\r\n\r\n") else { return "" }
        return String(response[range.upperBound...])
    }
}

/// Collects the last `keep` bytes of a response and completes when the connection closes.
private final class MockBenchCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<String>
    private let keep: Int
    private var tail: [UInt8] = []
    private var done = false

    init(promise: EventLoopPromise<String>, keep: Int) {
        self.promise = promise
        self.keep = keep
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        tail.append(contentsOf: buffer.readableBytesView)
        if tail.count > keep { tail.removeFirst(tail.count - keep) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            promise.succeed(String(decoding: tail, as: UTF8.self))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            promise.fail(error)
        }
        context.close(promise: nil)
    }
}
