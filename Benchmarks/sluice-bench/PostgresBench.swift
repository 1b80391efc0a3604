import ArgumentParser
import CLibPQ
import Foundation
import Logging
import SluicePostgres
import SluiceSupport

/// `sluice-bench postgres`: SluicePostgres latency and throughput against a local server
/// (fsync on, via `scripts/bench postgres`):
/// 1. single-statement round trips p50/p99 — raw libpq on a plain thread vs. the
///    actor-on-ThreadExecutor design, unprepared vs. prepared, `SELECT 1` and a one-row insert;
/// 2. pooled `SELECT 1` throughput with concurrent callers;
/// 3. COPY FROM STDIN of job-shaped rows vs. `psql \copy` of the same file;
/// 4. pipeline vs. sequential for batches of small inserts.
struct PostgresBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres",
        abstract: "SluicePostgres: round-trip latency (raw libpq vs actor), pool throughput, COPY vs psql \\copy, pipeline vs sequential.")

    @Option(help: "Round trips per latency scenario.")
    var iterations = 5_000

    @Option(help: "Rows for the COPY comparison.")
    var copyRows = 1_000_000

    @Option(help: "Statements per pipeline batch.")
    var pipelineSize = 100

    @Option(help: "Batches per pipeline scenario.")
    var pipelineRounds = 50

    @Option(help: "Seconds for the pool throughput scenario.")
    var seconds: Double = 3

    @Option(help: "PostgreSQL URL (default: $SLUICE_BENCH_DATABASE_URL).")
    var url: String?

    @Option(help: "psql binary for the \\copy comparison (default: $PG_BIN/psql).")
    var psql: String?

    func run() async throws {
        guard let url = url ?? ProcessInfo.processInfo.environment["SLUICE_BENCH_DATABASE_URL"] else {
            throw ValidationError("set SLUICE_BENCH_DATABASE_URL or pass --url (scripts/bench postgres does this)")
        }
        let configuration = try PostgresConfiguration(url: url)
        guard ["127.0.0.1", "localhost", "::1"].contains(configuration.host) else {
            throw ValidationError("benchmarks only run against a loopback PostgreSQL")
        }
        var logger = Logger(label: "sluice.bench.postgres")
        logger.logLevel = .warning
        let schema = "bench_pg_\(UInt32.random(in: 0...UInt32.max))"
        let connection = try await PostgresConnection.connect(configuration: configuration, logger: logger)
        try await connection.execute("CREATE SCHEMA \(schema); SET search_path TO \(schema)")
        defer { }
        print("SluicePostgres benchmark: \(ProcessInfo.processInfo.activeProcessorCount) cores, server \(configuration.host):\(configuration.port)")
        let version = try await connection.query("SHOW server_version").first!.decode(String.self, at: 0)
        let fsync = try await connection.query("SHOW fsync").first!.decode(String.self, at: 0)
        print("PostgreSQL \(version), fsync=\(fsync), libpq \(PQlibVersion())")

        // 1. Latency.
        print("\n## Single-statement round trips (\(iterations) each, one connection, one caller)\n")
        print("| scenario | p50 µs | p99 µs | mean µs |")
        print("|---|---:|---:|---:|")
        printRow("hop only: await connection.isClosed (no I/O)", try await timed(iterations) { _ = await connection.isClosed })
        let raw = try PGBenchRaw.roundTrips(url: url, sql: "SELECT 1", count: iterations)
        printRow("raw libpq PQexecParams on a plain thread: SELECT 1", raw)
        printRow("PostgresConnection.query: SELECT 1", try await timed(iterations) { _ = try await connection.query("SELECT 1") })
        printRow("PostgresConnection.query prepared: SELECT 1", try await timed(iterations) { _ = try await connection.query("SELECT 1", prepared: true) })
        try await connection.execute("CREATE TABLE one_row (id bigserial PRIMARY KEY, tenant text NOT NULL, lane smallint NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
        let insert = "INSERT INTO one_row (tenant, lane, payload) VALUES ($1, $2, $3)"
        let payload = PostgresJSON(string: #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}"#)
        let rawInsert = try PGBenchRaw.roundTrips(
            url: url, sql: "INSERT INTO \(schema).one_row (tenant, lane, payload) VALUES ('t1', 1, '{\"a\":1}')", count: iterations)
        printRow("raw libpq: one-row INSERT (autocommit)", rawInsert)
        printRow("PostgresConnection.query: one-row INSERT", try await timed(iterations) {
            _ = try await connection.query(insert, ["tenant-1", Int16(1), payload])
        })
        printRow("PostgresConnection.query prepared: one-row INSERT", try await timed(iterations) {
            _ = try await connection.query(insert, ["tenant-1", Int16(1), payload], prepared: true)
        })

        // 2. Pool throughput.
        print("\n## Pool throughput (SELECT 1, \(seconds) s each)\n")
        print("| connections | callers | statements/s |")
        print("|---:|---:|---:|")
        for (connections, callers) in [(1, 1), (4, 16), (8, 32)] {
            let client = PostgresClient(configuration: configuration, pool: .init(maxConnections: connections), logger: logger)
            let rate = try await poolThroughput(client, callers: callers)
            print("| \(connections) | \(callers) | \(Int(rate)) |")
            await client.shutdown()
        }

        // 3. COPY vs psql \copy.
        print("\n## COPY FROM STDIN, \(copyRows) job-shaped rows\n")
        let file = NSTemporaryDirectory() + "/\(schema)-jobs.tsv"
        let bytes = try PGBenchCopyFile.write(path: file, rows: copyRows)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let table = "(id uuid PRIMARY KEY, tenant text NOT NULL, lane smallint NOT NULL, request jsonb NOT NULL, created_at timestamptz NOT NULL, run_at timestamptz NOT NULL)"
        try await connection.execute("CREATE TABLE copy_swift \(table); CREATE TABLE copy_psql \(table)")
        let clock = ContinuousClock()
        let start = clock.now
        let copied = try await connection.copyFrom(
            "COPY copy_swift (id, tenant, lane, request, created_at, run_at) FROM STDIN", chunks: PGBenchFileChunks(path: file))
        let swiftTime = clock.now - start
        let psqlBinary = psql ?? (ProcessInfo.processInfo.environment["PG_BIN"].map { $0 + "/psql" } ?? "/usr/lib/postgresql/15/bin/psql")
        let psqlStart = clock.now
        try PGBenchRaw.runPsql(
            psqlBinary, url: url,
            command: "\\copy \(schema).copy_psql (id, tenant, lane, request, created_at, run_at) FROM '\(file)'")
        let psqlTime = clock.now - psqlStart
        let psqlCount = try await connection.query("SELECT count(*) FROM copy_psql").first!.decode(Int.self, at: 0)
        print("file: \(bytes / 1_000_000) MB, \(bytes / max(copyRows, 1)) B/row (uuid, tenant, lane, ~200 B jsonb, 2 timestamptz)\n")
        print("| loader | rows | seconds | rows/s | MB/s |")
        print("|---|---:|---:|---:|---:|")
        for (name, rows, time) in [("SluicePostgres copyFrom (1 MiB chunks)", copied, swiftTime), ("psql \\copy", psqlCount, psqlTime)] {
            let s = pgSeconds(time)
            print("| \(name) | \(rows) | \(String(format: "%.2f", s)) | \(Int(Double(rows) / s)) | \(String(format: "%.1f", Double(bytes) / s / 1_000_000)) |")
        }

        // 4. Pipeline vs sequential.
        print("\n## \(pipelineSize) small inserts: pipeline vs sequential (\(pipelineRounds) batches each)\n")
        try await connection.execute("CREATE TABLE small (id bigserial PRIMARY KEY, v int NOT NULL, s text NOT NULL)")
        let statements: [(sql: String, binds: [(any PostgresEncodable)?])] =
            (0..<pipelineSize).map { ("INSERT INTO small (v, s) VALUES ($1, $2)", [Int32($0), "row \($0)"]) }
        print("| mode | p50 ms/batch | p99 ms/batch | statements/s |")
        print("|---|---:|---:|---:|")
        let sequential = try await timed(pipelineRounds) {
            for statement in statements { _ = try await connection.query(statement.sql, statement.binds) }
        }
        let sequentialTx = try await timed(pipelineRounds) {
            try await connection.withTransaction { tx in
                for statement in statements { _ = try await tx.query(statement.sql, statement.binds) }
            }
        }
        let pipelined = try await timed(pipelineRounds) { _ = try await connection.pipeline(statements) }
        for (name, samples) in [
            ("sequential, autocommit (\(pipelineSize) commits)", sequential),
            ("sequential in one transaction", sequentialTx),
            ("pipeline (one implicit transaction)", pipelined),
        ] {
            let sorted = samples.sorted()
            let p50 = pgSeconds(sorted[sorted.count / 2]) * 1000
            let p99 = pgSeconds(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]) * 1000
            let mean = samples.map(pgSeconds).reduce(0, +) / Double(samples.count)
            print("| \(name) | \(String(format: "%.2f", p50)) | \(String(format: "%.2f", p99)) | \(Int(Double(pipelineSize) / mean)) |")
        }

        // 5. LISTEN/NOTIFY delivery.
        let notifications = min(iterations, 1_000)
        print("\n## LISTEN/NOTIFY: NOTIFY sent → notification received (\(notifications) notifications)\n")
        let listenerClient = PostgresClient(configuration: configuration, pool: .init(maxConnections: 1), logger: logger)
        let channel = schema + "_notify"
        let stream = try await listenerClient.startListening([channel])
        var events = stream.makeAsyncIterator()
        print("| scenario | p50 µs | p99 µs | mean µs |")
        print("|---|---:|---:|---:|")
        printRow("pg_notify() round trip + delivery to the listener", try await timed(notifications) {
            _ = try await connection.query("SELECT pg_notify($1, 'x')", [channel], prepared: true)
            _ = await events.next()
        })
        await listenerClient.shutdown()

        try await connection.execute("DROP SCHEMA \(schema) CASCADE")
        await connection.close()
    }

    func printRow(_ name: String, _ samples: [Duration]) {
        let sorted = samples.sorted()
        let micros = { (d: Duration) in pgSeconds(d) * 1_000_000 }
        let p50 = micros(sorted[sorted.count / 2])
        let p99 = micros(sorted[min(sorted.count - 1, sorted.count * 99 / 100)])
        let mean = samples.map(micros).reduce(0, +) / Double(samples.count)
        print("| \(name) | \(String(format: "%.1f", p50)) | \(String(format: "%.1f", p99)) | \(String(format: "%.1f", mean)) |")
    }

    func timed(_ count: Int, _ body: () async throws -> Void) async throws -> [Duration] {
        let clock = ContinuousClock()
        for _ in 0..<min(200, count) { try await body() }  // warm-up
        var samples: [Duration] = []
        samples.reserveCapacity(count)
        for _ in 0..<count {
            let start = clock.now
            try await body()
            samples.append(clock.now - start)
        }
        return samples
    }

    func poolThroughput(_ client: PostgresClient, callers: Int) async throws -> Double {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(seconds * 1000))
        let start = clock.now
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    var n = 0
                    while clock.now < deadline {
                        _ = try await client.query("SELECT 1", prepared: true)
                        n += 1
                    }
                    return n
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(total) / pgSeconds(clock.now - start)
    }
}

func pgSeconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// Baselines straight on libpq, on a plain OS thread (no actor, no executor hop).
enum PGBenchRaw {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func roundTrips(url: String, sql: String, count: Int) throws -> [Duration] {
        let result = Locked<Result<[Duration], Failure>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            result.withLock { $0 = measure(url: url, sql: sql, count: count) }
            done.signal()
        }
        thread.start()
        done.wait()
        return try result.current!.get()
    }

    private static func measure(url: String, sql: String, count: Int) -> Result<[Duration], Failure> {
        guard let pg = PQconnectdb(url), PQstatus(pg) == CONNECTION_OK else {
            return .failure(Failure(description: "raw libpq connect failed"))
        }
        defer { PQfinish(pg) }
        let clock = ContinuousClock()
        var samples: [Duration] = []
        samples.reserveCapacity(count)
        for i in 0..<(count + min(200, count)) {
            let start = clock.now
            guard let res = PQexecParams(pg, sql, 0, nil, nil, nil, nil, 0) else {
                return .failure(Failure(description: "PQexecParams returned NULL"))
            }
            let status = PQresultStatus(res)
            PQclear(res)
            guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
                return .failure(Failure(description: "raw statement failed: \(String(cString: PQerrorMessage(pg)))"))
            }
            if i >= min(200, count) { samples.append(clock.now - start) }
        }
        return .success(samples)
    }

    static func runPsql(_ binary: String, url: String, command: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [url, "-v", "ON_ERROR_STOP=1", "-q", "-c", command]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Failure(description: "psql \\copy failed (\(process.terminationStatus))") }
    }
}

/// Writes `rows` job-shaped rows in COPY text format.
enum PGBenchCopyFile {
    static func write(path: String, rows: Int) throws -> Int {
        FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw PGBenchRaw.Failure(description: "cannot write \(path)") }
        defer { try? handle.close() }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        var total = 0
        func timestamp(_ second: Int) -> String {
            let s = second % 86_400
            return "2026-11-23 " + pad(s / 3600) + ":" + pad(s / 60 % 60) + ":" + pad(s % 60) + "+00"
        }
        func pad(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        for i in 0..<rows {
            let created = i / 100
            let line = "\(UUID().uuidString.lowercased())\ttenant-\(i % 500)\t\(i % 4)\t"
                + #"{"model": "gpt-4o-mini", "max_tokens": 256, "messages": [{"role": "user", "content": "Summarise document \#(i) in three bullet points please."}], "metadata": {"source": "bench"}}"#
                + "\t\(timestamp(created))\t\(timestamp(created + i % 60))\n"
            buffer.append(contentsOf: line.utf8)
            if buffer.count >= 1 << 20 {
                handle.write(Data(buffer))
                total += buffer.count
                buffer.removeAll(keepingCapacity: true)
            }
        }
        handle.write(Data(buffer))
        return total + buffer.count
    }
}

/// A file read lazily in 1 MiB chunks.
struct PGBenchFileChunks: Sequence, Sendable {
    let path: String

    struct Iterator: IteratorProtocol {
        let handle: FileHandle?
        mutating func next() -> [UInt8]? {
            guard let handle, let data = try? handle.read(upToCount: 1 << 20), !data.isEmpty else {
                try? handle?.close()
                return nil
            }
            return [UInt8](data)
        }
    }

    func makeIterator() -> Iterator { Iterator(handle: FileHandle(forReadingAtPath: path)) }
}
