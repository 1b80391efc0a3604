import ArgumentParser
import Foundation
import Hummingbird
import Logging
import SluiceHTTP

#if canImport(Glibc)
import Glibc
#endif

/// `sluice-bench http`: many concurrent slow streaming requests through one `HTTPClient`
/// against a Hummingbird server in a separate process (`sluice-bench http serve`), reporting
/// the client's RSS, CPU time, wall time and failures.
struct HTTPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "SluiceHTTP: concurrent slow streaming transfers (client RSS/CPU) against a local server process.",
        subcommands: [HTTPClientBench.self, HTTPBenchServer.self],
        defaultSubcommand: HTTPClientBench.self
    )
}

/// Raises the soft open-file limit to the hard limit (each transfer holds one socket).
func raiseFileLimit() -> Int {
    var limit = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    return Int(limit.rlim_cur)
}

/// The client process's resource use.
struct ProcessUsage {
    var cpuSeconds: Double
    var rssKiB: Int
    var peakRSSKiB: Int
    var threads: Int

    /// CPU seconds (user + system) of another process, from /proc/<pid>/stat.
    static func cpuSeconds(pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func current() -> ProcessUsage {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        var rss = 0, hwm = 0, threads = 0
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard parts.count >= 2, let value = Int(parts[1]) else { continue }
                switch parts[0] {
                case "VmRSS:": rss = value
                case "VmHWM:": hwm = value
                case "Threads:": threads = value
                default: break
                }
            }
        }
        return ProcessUsage(cpuSeconds: cpu, rssKiB: rss, peakRSSKiB: hwm, threads: threads)
    }
}

struct HTTPClientBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the client side (default); starts `http serve` as a child process."
    )

    @Option(help: "Comma-separated concurrency levels; each level is one round of that many simultaneous requests.")
    var concurrency: String = "1000,5000,10000"
    @Option(help: "Chunks per response.")
    var chunks: Int = 20
    @Option(help: "Milliseconds between chunks (20 chunks × 100 ms ≈ a 2-second stream).")
    var intervalMs: Int = 100
    @Option(help: "Bytes per chunk (an SSE event of about this size).")
    var chunkBytes: Int = 120
    @Option(help: "Use this server URL instead of starting `http serve` (e.g. http://127.0.0.1:8080).")
    var server: String?

    func run() async throws {
        let fileLimit = raiseFileLimit()
        var logger = Logger(label: "sluice-bench-http")
        logger.logLevel = .warning
        let levels = concurrency.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }

        var child: Process?
        let base: String
        if let server {
            base = server
        } else {
            let (process, port) = try startServer()
            child = process
            base = "http://127.0.0.1:\(port)"
        }
        defer { child?.terminate() }

        print("==> SluiceHTTP bench: \(HTTPClient.curlVersion)")
        print("    server \(base) (separate process), \(chunks) chunks × \(chunkBytes) B every \(intervalMs) ms, fd limit \(fileLimit)")
        let baseline = ProcessUsage.current()
        print("    client baseline: RSS \(baseline.rssKiB / 1024) MiB, \(baseline.threads) threads")
        print("| concurrent | ok | failed | wall s | ideal s | request p50 s | p99 s | client CPU s | client CPU/wall | server CPU s | RSS after MiB | peak RSS (VmHWM) MiB | threads |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

        for level in levels {
            // A fresh client per round, so its connection cache starts empty.
            let client = HTTPClient(logger: logger)
            let url = "\(base)/stream?n=\(chunks)&delay=\(intervalMs)&size=\(chunkBytes)"
            let before = ProcessUsage.current()
            let serverBefore = child.map { ProcessUsage.cpuSeconds(pid: $0.processIdentifier) } ?? 0
            let started = ContinuousClock.now
            let (ok, failures) = await withTaskGroup(of: Result<Duration, HTTPBenchFailure>.self) { group in
                for _ in 0..<level {
                    group.addTask {
                        do throws(SluiceHTTP.HTTPError) {
                            let requestStarted = ContinuousClock.now
                            let response = try await client.execute(SluiceHTTP.HTTPRequest(url: url))
                            var bytes = 0
                            for try await chunk in response.body { bytes += chunk.count }
                            guard response.status == 200, bytes == chunks * chunkBytes else {
                                return .failure(HTTPBenchFailure(kind: "transport"))  // wrong status or length
                            }
                            return .success(ContinuousClock.now - requestStarted)
                        } catch {
                            return .failure(HTTPBenchFailure(kind: "\(error.code)"))
                        }
                    }
                }
                var ok: [Duration] = []
                var failures: [String: Int] = [:]
                for await result in group {
                    switch result {
                    case .success(let duration): ok.append(duration)
                    case .failure(let error): failures[error.kind, default: 0] += 1
                    }
                }
                return (ok, failures)
            }
            let wall = ContinuousClock.now - started
            let after = ProcessUsage.current()
            let serverCPU = (child.map { ProcessUsage.cpuSeconds(pid: $0.processIdentifier) } ?? 0) - serverBefore
            let sorted = ok.sorted()
            func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
            let p50 = sorted.isEmpty ? 0 : seconds(sorted[sorted.count / 2])
            let p99 = sorted.isEmpty ? 0 : seconds(sorted[min(sorted.count - 1, sorted.count * 99 / 100)])
            await client.shutdown()
            let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
            let cpu = after.cpuSeconds - before.cpuSeconds
            let ideal = Double((chunks - 1) * intervalMs) / 1000
            print(String(
                format: "| %d | %d | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %d | %d | %d |",
                level, ok.count, failures.values.reduce(0, +), wallSeconds, ideal, p50, p99, cpu, cpu / wallSeconds, serverCPU,
                after.rssKiB / 1024, after.peakRSSKiB / 1024, after.threads
            ))
            if !failures.isEmpty { print("    failures: \(failures.sorted { $0.key < $1.key })") }
            try await Task.sleep(for: .seconds(2))  // let TIME_WAIT/close settle between rounds
        }
    }

    /// Starts `sluice-bench http serve --port 0` and reads the bound port from its first line.
    private func startServer() throws -> (Process, Int) {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["http", "serve", "--port", "0"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        var line = Data()
        while true {
            let byte = pipe.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data([10]) { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5)) else {
            process.terminate()
            throw ValidationError("the server process did not report its port (got '\(text)')")
        }
        return (process, port)
    }
}

/// `sluice-bench http serve`: the streaming server for the benchmark, in its own process.
struct HTTPBenchServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve GET /stream?n=&delay=&size= (n chunks of size bytes, delay ms apart) on 127.0.0.1."
    )

    @Option(help: "Port (0 = ephemeral; the bound port is printed as 'PORT n').")
    var port: Int = 0

    func run() async throws {
        _ = raiseFileLimit()
        var logger = Logger(label: "sluice-bench-http-server")
        logger.logLevel = .error
        let router = Router()
        router.get("/stream") { request, _ -> Response in
            let n = request.uri.queryParameters.get("n", as: Int.self) ?? 20
            let delay = request.uri.queryParameters.get("delay", as: Int.self) ?? 100
            let size = max(2, request.uri.queryParameters.get("size", as: Int.self) ?? 120)
            var event = ByteBuffer(string: "data: ")
            event.writeString(String(repeating: "x", count: max(0, size - 8)))
            event.writeString("\n\n")
            let chunk = event
            return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
                for i in 0..<n {
                    if i > 0 { try await Task.sleep(for: .milliseconds(delay)) }
                    try await writer.write(chunk)
                }
                try await writer.finish(nil)
            })
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "bench", backlog: 4096),
            onServerRunning: { channel in
                FileHandle.standardOutput.write(Data("PORT \(channel.localAddress?.port ?? 0)\n".utf8))
            },
            logger: logger
        )
        try await app.runService()
    }
}

/// A failed request of the HTTP benchmark, counted by kind (an ``HTTPError`` code, or
/// `transport` for a wrong status or body length).
struct HTTPBenchFailure: Error {
    let kind: String
}
