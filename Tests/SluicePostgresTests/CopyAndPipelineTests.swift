import Foundation
import SluicePostgresTestSupport
import Testing

@testable import SluicePostgres

@Suite(.temporaryDatabase(sharedBySuite: true)) struct CopyAndPipelineTests {
    @Test func copies100kRowsInChunksThatSplitRows() async throws {
        try await TestDatabase.withSchema { c, _ in
            try await c.execute("CREATE TABLE jobs (id uuid PRIMARY KEY, tenant text NOT NULL, lane smallint NOT NULL, request jsonb NOT NULL)")
            var chunks: [[UInt8]] = []
            var buffer: [UInt8] = []
            for i in 0..<100_000 {
                let line = "\(UUID().uuidString)\ttenant-\(i % 37)\t\(i % 4)\t{\"n\": \(i), \"s\": \"tab\\\\tx\"}\n"
                buffer.append(contentsOf: line.utf8)
                if buffer.count >= 65_537 {  // deliberately not row-aligned
                    chunks.append(Array(buffer[..<65_537]))
                    buffer = Array(buffer[65_537...])
                }
            }
            chunks.append(buffer)
            let copied = try await c.copyFrom("COPY jobs (id, tenant, lane, request) FROM STDIN", chunks: chunks)
            #expect(copied == 100_000)
            let row = try #require(try await c.query("SELECT count(*), count(DISTINCT tenant), max((request->>'n')::int) FROM jobs").first)
            #expect(try row.decode(Int.self, at: 0) == 100_000)
            #expect(try row.decode(Int.self, at: 1) == 37)
            #expect(try row.decode(Int.self, at: 2) == 99_999)
            let s = try await c.query("SELECT request->>'s' FROM jobs LIMIT 1")
            #expect(try s.first?.decode(String.self, at: 0) == "tab\tx")
        }
    }

    @Test func malformedRowFailsWithSQLStateAndConnectionStaysUsable() async throws {
        try await TestDatabase.withSchema { c, _ in
            try await c.execute("CREATE TABLE t (a int, b text)")
            let data = Array("1\tone\n2\ttwo\nthree\tbad\n4\tfour\n".utf8)
            let error = await #expect(throws: PostgresError.self) {
                try await c.copyFrom("COPY t FROM STDIN", chunks: [data])
            }
            #expect(error?.code == .copyFailed)
            #expect(error?.sqlState == "22P02")
            #expect(try await c.query("SELECT count(*) FROM t").first?.decode(Int.self, at: 0) == 0)
            // CSV works on the same connection afterwards.
            let csv = Array("5,\"five, quoted\"\n6,six\n".utf8)
            #expect(try await c.copyFrom("COPY t FROM STDIN WITH (FORMAT csv)", chunks: [csv]) == 2)
            #expect(try await c.query("SELECT b FROM t WHERE a = 5").first?.decode(String.self, at: 0) == "five, quoted")
        }
    }

    /// Rows generated lazily, far more than can be sent before the cancel.
    struct EndlessRows: Sequence, Sendable {
        struct Iterator: IteratorProtocol {
            var n = 0
            mutating func next() -> [UInt8]? {
                n += 1
                guard n < 10_000_000 else { return nil }
                var chunk: [UInt8] = []
                for i in 0..<1_000 { chunk.append(contentsOf: "\(n * 1_000 + i)\tpayload\n".utf8) }
                return chunk
            }
        }
        func makeIterator() -> Iterator { Iterator() }
    }

    @Test func cancellingACopyLeavesTheConnectionUsable() async throws {
        try await TestDatabase.withSchema { (c, _) async throws -> Void in
            try await c.execute("CREATE TABLE t (a bigint, b text)")
            let task = Task { try await c.copyFrom("COPY t FROM STDIN", chunks: EndlessRows()) }
            try await Task.sleep(for: .milliseconds(200))
            task.cancel()
            let error = await #expect(throws: PostgresError.self) { try await task.value }
            #expect(error?.code == .cancelled)
            #expect(try await c.query("SELECT count(*) FROM t").first?.decode(Int.self, at: 0) == 0)
            #expect(await !c.isClosed)
        }
    }

    @Test func copyRejectsOtherStatements() async throws {
        try await TestDatabase.withSchema { (c, _) async throws -> Void in
            let empty: [[UInt8]] = []
            let error = await #expect(throws: PostgresError.self) { () async throws -> Int in
                try await c.copyFrom("SELECT 1", chunks: empty)
            }
            #expect(error?.code == .invalidUsage)
            let missing = await #expect(throws: PostgresError.self) { () async throws -> Int in
                try await c.copyFrom("COPY nope FROM STDIN", chunks: empty)
            }
            #expect(missing?.sqlState == "42P01")
            #expect(try await c.query("SELECT 1").rows.count == 1)
        }
    }

    @Test func pipelineReturnsResultsInOrder() async throws {
        try await TestDatabase.withSchema { c, _ in
            try await c.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            var statements: [(sql: String, binds: [(any PostgresEncodable)?])] = []
            for i in 0..<100 {
                statements.append(("INSERT INTO t VALUES ($1, $2)", [Int32(i), "n\(i)"]))
            }
            statements.append(("SELECT count(*) FROM t", []))
            statements.append(("SELECT name FROM t WHERE id = ANY($1) ORDER BY id", [[3, 7]]))
            let results = try await c.pipeline(statements)
            #expect(results.count == 102)
            #expect(results[0].affectedRows == 1)
            #expect(try results[100].first?.decode(Int.self, at: 0) == 100)
            #expect(try results[101].map { try $0.decode(String.self, at: 0) } == ["n3", "n7"])
            #expect(try await c.pipeline([PostgresQuery]()).isEmpty)
        }
    }

    @Test func pipelineErrorAbortsTheRestAndRollsBack() async throws {
        try await TestDatabase.withSchema { c, _ in
            try await c.execute("CREATE TABLE t (id int PRIMARY KEY)")
            let error = await #expect(throws: PostgresError.self) {
                try await c.pipeline([
                    ("INSERT INTO t VALUES (1)", []),
                    ("INSERT INTO t VALUES (1)", []),
                    ("INSERT INTO t VALUES (2)", []),
                ])
            }
            #expect(error?.sqlState == "23505")
            #expect(error?.message.contains("statement 2 of 3") == true)
            #expect(try await c.query("SELECT count(*) FROM t").first?.decode(Int.self, at: 0) == 0)
            // Connection still usable, and a later pipeline works.
            let ok = try await c.pipeline([("INSERT INTO t VALUES (1)", []), ("SELECT count(*) FROM t", [])])
            #expect(try ok[1].first?.decode(Int.self, at: 0) == 1)
        }
    }

    @Test func largePipelineDoesNotDeadlock() async throws {
        let c = try await TestDatabase.connect()
        // ~2 MB of results and ~1 MB of statements: more than the socket buffers.
        let payload = String(repeating: "x", count: 1_000)
        let statements: [(sql: String, binds: [(any PostgresEncodable)?])] =
            (0..<2_000).map { _ in ("SELECT $1::text", [payload]) }
        let results = try await c.pipeline(statements)
        #expect(results.count == 2_000)
        #expect(try results[1_999].first?.decode(String.self, at: 0) == payload)
    }
}
