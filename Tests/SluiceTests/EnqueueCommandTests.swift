import Foundation
import Sluice
import SluiceTestSupport
import Testing

/// `sluice enqueue --file` through the real binary.
@Suite("sluice enqueue --file")
struct EnqueueCommandTests {
    static var sluice: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/sluice")
    }

    /// Runs the CLI on a thread of its own: reading its pipes and waiting for it block, and on
    /// the cooperative pool (two threads on this machine) that stalled every other test.
    func run(_ db: MigratedDatabase, _ lines: [String], json: Bool = true, extra: [String] = []) async throws -> (status: Int32, stdout: String, stderr: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("jobs-\(UUID().uuidString).jsonl")
        try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = Self.sluice
        process.arguments = ["enqueue", "--file", file.path, "--database-url", db.url, "--log-level", "error"] + (json ? ["--json"] : []) + extra
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return await withCheckedContinuation { continuation in
            Thread {
                let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                continuation.resume(returning: (process.terminationStatus, stdout, stderr))
            }.start()
        }
    }

    static func line(_ tenant: String, model: String = "echo", key: String? = nil) -> String {
        let keyPart = key.map { #","idempotency_key":"\#($0)""# } ?? ""
        return #"{"tenant":"\#(tenant)","provider":"echo","model":"\#(model)","request":{"messages":[{"role":"user","content":"hi"}]}\#(keyPart)}"#
    }

    @Test func aBadLineRejectsTheFileAndNamesTheLine() async throws {
        let db = try await MigratedDatabase.make()
        let result = try await run(db, [Self.line("acme"), Self.line("acme", model: "gpt-9"), "", "{not json", Self.line("acme")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("line 2: model:"))
        #expect(result.stderr.contains("line 4: not a JSON object"))
        #expect(result.stdout.contains(#""enqueued":0"#))
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs") == 0)
        await db.close()
    }

    @Test func aValidFileIsEnqueuedWithDuplicatesCounted() async throws {
        let db = try await MigratedDatabase.make()
        let result = try await run(db, [Self.line("acme", key: "a"), Self.line("acme", key: "a"), Self.line("globex")])
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"enqueued":2,"duplicates":1,"rejected":0}"#)
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs") == 2)
        await db.close()
    }

    @Test func parallelBatchesInsertEveryLineOnce() async throws {
        let db = try await MigratedDatabase.make()
        let lines = (0..<37).map { Self.line("t\($0 % 4)", key: "k\($0)") }
        let result = try await run(db, lines, extra: ["--batch-size", "5", "--parallel", "3"])
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"enqueued":37,"duplicates":0,"rejected":0}"#)
        #expect(try await db.count("SELECT count(DISTINCT idempotency_key) FROM sluice.jobs") == 37)
        await db.close()
    }

    @Test func aStoppedBatchStopsTheRestAndTheSummaryAddsUp() async throws {
        let db = try await MigratedDatabase.make()
        _ = try await db.postgres.query("INSERT INTO sluice.tenants (id, paused) VALUES ('frozen', true)")
        // Batches of 5: the fourth batch holds the paused tenant's line.
        var lines = (0..<40).map { Self.line("acme", key: "k\($0)") }
        lines[17] = Self.line("frozen")
        let result = try await run(db, lines, extra: ["--batch-size", "5", "--parallel", "2"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("lines 16–20"))
        #expect(result.stderr.contains("paused"))
        let inserted = try await db.count("SELECT count(*) FROM sluice.jobs")
        #expect(result.stdout.contains(#""enqueued":\#(inserted),"#))
        #expect(result.stdout.contains(#""rejected":\#(40 - inserted)}"#))
        // The stopped batch is all-or-nothing; batches after it in flight may have gone in,
        // later ones never start.
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs WHERE idempotency_key IN ('k15','k16','k18','k19')") == 0)
        #expect(inserted >= 15 && inserted <= 25)
        await db.close()
    }
}
