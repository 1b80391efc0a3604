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

    func run(_ db: MigratedDatabase, _ lines: [String], json: Bool = true) throws -> (status: Int32, stdout: String, stderr: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("jobs-\(UUID().uuidString).jsonl")
        try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = Self.sluice
        process.arguments = ["enqueue", "--file", file.path, "--database-url", db.url, "--log-level", "error"] + (json ? ["--json"] : [])
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }

    static func line(_ tenant: String, model: String = "echo", key: String? = nil) -> String {
        let keyPart = key.map { #","idempotency_key":"\#($0)""# } ?? ""
        return #"{"tenant":"\#(tenant)","provider":"echo","model":"\#(model)","request":{"messages":[{"role":"user","content":"hi"}]}\#(keyPart)}"#
    }

    @Test func aBadLineRejectsTheFileAndNamesTheLine() async throws {
        let db = try await MigratedDatabase.make()
        let result = try run(db, [Self.line("acme"), Self.line("acme", model: "gpt-9"), "", "{not json", Self.line("acme")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("line 2: model:"))
        #expect(result.stderr.contains("line 4: not a JSON object"))
        #expect(result.stdout.contains(#""enqueued":0"#))
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs") == 0)
        await db.close()
    }

    @Test func aValidFileIsEnqueuedWithDuplicatesCounted() async throws {
        let db = try await MigratedDatabase.make()
        let result = try run(db, [Self.line("acme", key: "a"), Self.line("acme", key: "a"), Self.line("globex")])
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"enqueued":2,"duplicates":1,"rejected":0}"#)
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs") == 2)
        await db.close()
    }
}
