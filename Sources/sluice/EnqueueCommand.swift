import ArgumentParser
import Foundation
import Sluice
import SluicePostgres

/// `sluice enqueue --file jobs.jsonl`: one job spec per line.
///
/// Policy: every line is validated (JSON, then the database's rules) before anything is
/// inserted; if any line is invalid the file is rejected as a whole and every bad line is
/// reported with its number. Valid files are inserted in batches of up to 10,000 jobs, each
/// all-or-nothing. If admission stops a batch (queue full, tenant paused, budget), earlier
/// batches stay inserted, and the summary says how many.
struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue", abstract: "Enqueue jobs from a JSON Lines file.")

    @OptionGroup var options: GlobalOptions

    @Option(name: .long, help: "The JSONL file (one job per line; '-' for standard input).")
    var file: String

    @Option(name: .long, help: "Jobs per batch (1–10000).")
    var batchSize: Int = 10_000

    @Flag(name: .long, help: "Print a JSON summary {\"enqueued\":N,\"duplicates\":N,\"rejected\":N}.")
    var json = false

    func run() async throws {
        guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be from 1 to 10000") }
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
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)), object is [String: Any] else {
                problems.append((offset + 1, "not a JSON object"))
                unparsable += 1
                continue
            }
            lines.append((offset + 1, bytes))
        }
        let postgres = PostgresClient(configuration: try options.postgresConfiguration(), logger: logger)

        func batchJSON(_ batch: ArraySlice<(number: Int, bytes: [UInt8])>) -> PostgresJSON {
            var writer = JSONWriter(capacity: batch.reduce(2) { $0 + $1.bytes.count + 1 })
            writer.beginArray()
            for line in batch { writer.raw(line.bytes) }
            writer.endArray()
            return PostgresJSON(bytes: writer.bytes)
        }
        let batches = stride(from: 0, to: lines.count, by: batchSize).map { lines[$0..<min($0 + batchSize, lines.count)] }
        // Pass 1: validate everything; nothing is written.
        for batch in batches {
            let result = try await postgres.query("SELECT idx, field, message FROM sluice.spec_errors($1::jsonb)", [batchJSON(batch)])
            for row in result.rows {
                let index = try row.decode(Int.self, at: 0)
                problems.append((batch[batch.startIndex + index].number,
                                 "\(try row.decode(String.self, at: 1)): \(try row.decode(String.self, at: 2))"))
            }
        }
        if !problems.isEmpty {
            for problem in problems.sorted(by: { $0.line < $1.line }) {
                FileHandle.standardError.write(Data("line \(problem.line): \(problem.message)\n".utf8))
            }
            // The whole file is rejected: every non-blank line.
            report(enqueued: 0, duplicates: 0, rejected: lines.count + unparsable)
            throw ExitCode(1)
        }
        // Pass 2: insert batch by batch.
        var enqueued = 0, duplicates = 0
        let progress = ProgressBar(total: lines.count, enabled: !json && isatty(STDERR_FILENO) == 1)
        for batch in batches {
            do {
                let rows = try await postgres.query("SELECT created FROM sluice.enqueue_specs($1::jsonb)", [batchJSON(batch)])
                for row in rows.rows {
                    if try row.decode(Bool.self, at: 0) { enqueued += 1 } else { duplicates += 1 }
                }
                progress.update(enqueued + duplicates)
            } catch {
                progress.finish()
                let failure = SluiceErrorBridge.describe(error)
                FileHandle.standardError.write(Data("lines \(batch.first!.number)–\(batch.last!.number): \(failure)\n".utf8))
                report(enqueued: enqueued, duplicates: duplicates, rejected: lines.count - enqueued - duplicates)
                throw ExitCode(1)
            }
        }
        progress.finish()
        report(enqueued: enqueued, duplicates: duplicates, rejected: 0)
        await postgres.shutdown()
    }

    private func report(enqueued: Int, duplicates: Int, rejected: Int) {
        if json {
            print(#"{"enqueued":\#(enqueued),"duplicates":\#(duplicates),"rejected":\#(rejected)}"#)
        } else {
            print("enqueued \(enqueued), duplicates \(duplicates), rejected \(rejected)")
        }
    }
}

enum SluiceErrorBridge {
    static func describe(_ error: any Error) -> String {
        if let error = error as? PostgresError { return error.message }
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
