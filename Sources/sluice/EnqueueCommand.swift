import ArgumentParser
import Foundation
import Sluice
import SluiceJSON
import SluicePostgres
import SluiceSupport

/// `sluice enqueue --file jobs.jsonl`: one job spec per line.
///
/// Policy: every line is validated (JSON, then the database's rules) before anything is
/// inserted; if any line is invalid the file is rejected as a whole and every bad line is
/// reported with its number. Valid files are inserted in batches of up to 10,000 jobs, each
/// all-or-nothing, `--parallel` batches at a time (each on its own connection). If admission
/// stops a batch (queue full, tenant paused, budget), no further batch starts; batches already
/// inserted (including ones in flight at that moment) stay, and the summary says how many.
struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue", abstract: "Enqueue jobs from a JSON Lines file.")

    @OptionGroup var options: GlobalOptions

    @Option(name: .long, help: "The JSONL file (one job per line; '-' for standard input).")
    var file: String

    @Option(name: .long, help: "Jobs per batch (1–10000).")
    var batchSize: Int = 10_000

    @Option(name: .long, help: "Batches validated and inserted at once, each on its own connection (1–8).")
    var parallel: Int = 2

    @Flag(name: .long, help: "Print a JSON summary {\"enqueued\":N,\"duplicates\":N,\"rejected\":N}.")
    var json = false

    func run() async throws {
        guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be from 1 to 10000") }
        guard (1...8).contains(parallel) else { throw ValidationError("--parallel must be from 1 to 8") }
        let logger = try options.makeLogger("sluice.enqueue")
        let data: Data
        do {
            data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            throw ValidationError("--file: cannot read \(file): \(error.localizedDescription)")
        }
        // Lines: (line number, JSON bytes). Blank lines are skipped.
        var lines: [(number: Int, bytes: [UInt8])] = []
        var problems: [(line: Int, message: String)] = []
        var unparsable = 0
        for (offset, slice) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let bytes = Array(slice).filter { $0 != UInt8(ascii: "\r") }
            if bytes.allSatisfy({ $0 == 32 || $0 == 9 }) { continue }
            guard JSONSyntax.kind(bytes) == .object else {
                problems.append((offset + 1, "not a JSON object"))
                unparsable += 1
                continue
            }
            lines.append((offset + 1, bytes))
        }
        let postgres = PostgresClient(configuration: try options.postgresConfiguration(), logger: logger)
        let store = JobStore(postgres: postgres)

        let batches = stride(from: 0, to: lines.count, by: batchSize).map { lines[$0..<min($0 + batchSize, lines.count)] }
        // Pass 1: validate everything; nothing is written.
        let found = try await Self.forEach(batches, parallel: parallel) { batch in
            try await store.specProblems(Self.batchJSON(batch)).map { problem -> (line: Int, message: String) in
                (batch[batch.startIndex + problem.index].number, "\(problem.field): \(problem.message)")
            }
        }
        problems += found.flatMap { $0 }
        if !problems.isEmpty {
            for problem in problems.sorted(by: { $0.line < $1.line }) {
                FileHandle.standardError.write(Data("line \(problem.line): \(problem.message)\n".utf8))
            }
            // The whole file is rejected: every non-blank line.
            report(enqueued: 0, duplicates: 0, rejected: lines.count + unparsable)
            throw ExitCode(1)
        }
        // Pass 2: insert, `parallel` batches at a time; the first failure stops new batches.
        let progress = ProgressBar(total: lines.count, enabled: !json && isatty(STDERR_FILENO) == 1)
        let counts = Locked((enqueued: 0, duplicates: 0, failure: String?.none))
        _ = try await Self.forEach(batches, parallel: parallel, stop: { counts.withLock { $0.failure != nil } }) { batch in
            do {
                let jobs = try await store.enqueue(specs: Self.batchJSON(batch), count: batch.count)
                let created = jobs.count { $0.created }
                let done = counts.withLock { counts -> Int in
                    counts.enqueued += created
                    counts.duplicates += jobs.count - created
                    return counts.enqueued + counts.duplicates
                }
                progress.update(done)
            } catch {
                let failure = "lines \(batch.first!.number)–\(batch.last!.number): \(Self.describe(error))"
                counts.withLock { if $0.failure == nil { $0.failure = failure } }
            }
        }
        let (enqueued, duplicates, failure) = counts.withLock { ($0.enqueued, $0.duplicates, $0.failure) }
        if let failure {
            progress.finish()
            FileHandle.standardError.write(Data("\(failure)\n".utf8))
            report(enqueued: enqueued, duplicates: duplicates, rejected: lines.count - enqueued - duplicates)
            await postgres.shutdown()
            throw ExitCode(1)
        }
        progress.finish()
        report(enqueued: enqueued, duplicates: duplicates, rejected: 0)
        await postgres.shutdown()
    }

    static func batchJSON(_ batch: ArraySlice<(number: Int, bytes: [UInt8])>) -> PostgresJSON {
        var writer = JSONWriter(capacity: batch.reduce(2) { $0 + $1.bytes.count + 1 })
        writer.beginArray()
        for line in batch { writer.raw(line.bytes) }
        writer.endArray()
        return PostgresJSON(bytes: writer.bytes)
    }

    /// Runs `body` for every batch, at most `parallel` at a time, and returns the results in
    /// batch order. Once `stop()` is true no further batch starts (those running finish).
    static func forEach<Batch: Sendable, Result: Sendable>(
        _ batches: [Batch], parallel: Int, stop: @escaping @Sendable () -> Bool = { false },
        _ body: @escaping @Sendable (Batch) async throws -> Result
    ) async throws -> [Result] {
        try await withThrowingTaskGroup(of: (Int, Result).self) { group in
            var results = [Result?](repeating: nil, count: batches.count)
            var next = 0
            func start() {
                guard next < batches.count, !stop() else { return }
                let index = next
                next += 1
                group.addTask { (index, try await body(batches[index])) }
            }
            for _ in 0..<parallel { start() }
            while let (index, result) = try await group.next() {
                results[index] = result
                start()
            }
            return results.compactMap { $0 }
        }
    }

    private func report(enqueued: Int, duplicates: Int, rejected: Int) {
        if json {
            print(#"{"enqueued":\#(enqueued),"duplicates":\#(duplicates),"rejected":\#(rejected)}"#)
        } else {
            print("enqueued \(enqueued), duplicates \(duplicates), rejected \(rejected)")
        }
    }
}

extension EnqueueCommand {
    /// The message of an admission or database error, without the code prefix.
    static func describe(_ error: any Error) -> String {
        if let error = error as? SluiceError { return error.underlying?.message ?? error.message }
        return String(describing: error)
    }
}

/// A one-line progress bar on standard error (only on a terminal).
struct ProgressBar {
    let total: Int
    let enabled: Bool

    func update(_ done: Int) {
        guard enabled, total > 0 else { return }
        let width = 40
        let filled = width * done / total
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total)".utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
