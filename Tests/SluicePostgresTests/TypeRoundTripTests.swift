import Foundation
import SluicePostgresTestSupport
import Testing

@testable import SluicePostgres

@Suite(.temporaryDatabase(sharedBySuite: true)) struct TypeRoundTripTests {
    /// Binds `value` as `$1`, casts it to `sqlType` on the server, and decodes it back.
    func roundTrip<T: PostgresEncodable & PostgresDecodable>(
        _ connection: PostgresConnection, _ value: T, _ sqlType: String
    ) async throws -> T {
        let result = try await connection.query("SELECT $1::\(sqlType) AS v", [value])
        return try #require(result.first).decode(T.self, column: "v")
    }

    @Test func scalarsRoundTrip() async throws {
        let c = try await TestDatabase.connect()
        #expect(try await roundTrip(c, "héllo wörld ✓ 日本語 🚀", "text") == "héllo wörld ✓ 日本語 🚀")
        #expect(try await roundTrip(c, "", "text") == "")
        #expect(try await roundTrip(c, "quote ' double \" back \\ {a,b}", "text") == "quote ' double \" back \\ {a,b}")
        #expect(try await roundTrip(c, Int.max, "int8") == Int.max)
        #expect(try await roundTrip(c, Int.min, "int8") == Int.min)
        #expect(try await roundTrip(c, Int64.min, "int8") == Int64.min)
        #expect(try await roundTrip(c, Int32.max, "int4") == Int32.max)
        #expect(try await roundTrip(c, Int32.min, "int4") == Int32.min)
        #expect(try await roundTrip(c, Int16.min, "int2") == Int16.min)
        #expect(try await roundTrip(c, Int16.max, "int2") == Int16.max)
        // OID 0: the server infers uuid from the comparison.
        let inferred = try await c.query("SELECT $1 = '00000000-0000-0000-0000-000000000001'::uuid", [PostgresUntyped("00000000-0000-0000-0000-000000000001")])
        #expect(try inferred.first?.decode(Bool.self, at: 0) == true)
        #expect(try await roundTrip(c, 3.141592653589793, "float8") == 3.141592653589793)
        #expect(try await roundTrip(c, -0.0, "float8") == 0)
        #expect(try await roundTrip(c, Double.greatestFiniteMagnitude, "float8") == .greatestFiniteMagnitude)
        #expect(try await roundTrip(c, 5e-324, "float8") == 5e-324)
        #expect(try await roundTrip(c, Double.infinity, "float8") == .infinity)
        #expect(try await roundTrip(c, -Double.infinity, "float8") == -.infinity)
        #expect(try await roundTrip(c, Double.nan, "float8").isNaN)
        #expect(try await roundTrip(c, true, "bool") == true)
        #expect(try await roundTrip(c, false, "bool") == false)
        let bytes: [UInt8] = [0, 1, 2, 0, 255, 92, 120, 0]
        #expect(try await roundTrip(c, bytes, "bytea") == bytes)
        #expect(try await roundTrip(c, [UInt8](), "bytea") == [])
        let uuid = UUID()
        #expect(try await roundTrip(c, uuid, "uuid") == uuid)
        let json = PostgresJSON(string: #"{"a": [1, 2, {"b": "ü\"x"}], "n": null}"#)
        let decodedJSON = try await roundTrip(c, json, "jsonb")
        #expect(try JSONSerialization.jsonObject(with: Data(decodedJSON.bytes)) as? NSDictionary
            == JSONSerialization.jsonObject(with: Data(json.bytes)) as? NSDictionary)
        #expect(try await roundTrip(c, Duration.seconds(90) + .microseconds(5), "interval") == .seconds(90) + .microseconds(5))
        #expect(try await roundTrip(c, Duration.seconds(-3 * 86_400 - 1), "interval") == .seconds(-3 * 86_400 - 1))
    }

    @Test func datesRoundTripWithMicroseconds() async throws {
        let c = try await TestDatabase.connect()
        for seconds in [0.0, 1_700_000_000.123456, -1_234_567_890.654321, 4_102_444_800.000001, -62_135_596_800] {
            let date = Date(timeIntervalSince1970: seconds)
            let back = try await roundTrip(c, date, "timestamptz")
            #expect(abs(back.timeIntervalSince1970 - seconds) < 0.000_002, "\(seconds) came back as \(back.timeIntervalSince1970)")
        }
        // Server-produced values: offsets, date and timestamp without time zone.
        let row = try #require(try await c.query("""
            SELECT '2024-02-29 23:59:59.5+05:30'::timestamptz, '2024-01-02'::date, '2024-01-02 03:04:05'::timestamp,
                   'infinity'::timestamptz, now()
            """).first)
        #expect(try row.decode(Date.self, at: 0) == Date(timeIntervalSince1970: 1_709_231_399.5))
        #expect(try row.decode(Date.self, at: 1) == Date(timeIntervalSince1970: 1_704_153_600))
        #expect(try row.decode(Date.self, at: 2) == Date(timeIntervalSince1970: 1_704_164_645))
        #expect(try row.decode(Date.self, at: 3) == .distantFuture)
        #expect(abs(try row.decode(Date.self, at: 4).timeIntervalSinceNow) < 60)
        let interval = try #require(try await c.query("SELECT '1 year 2 mons 3 days 04:05:06.5'::interval").first)
        let expectedSeconds: Int64 = 31_557_600 + 2 * 2_592_000 + 3 * 86_400 + 4 * 3600 + 5 * 60 + 6
        let expected = Duration.seconds(expectedSeconds) + Duration.milliseconds(500)
        #expect(try interval.decode(Duration.self, at: 0) == expected)
    }

    @Test func arraysRoundTrip() async throws {
        let c = try await TestDatabase.connect()
        let strings = ["a", "", "with,comma", "with \"quote\"", "back\\slash", "{brace}", "NULL", "ü 🚀"]
        #expect(try await roundTrip(c, strings, "text[]") == strings)
        #expect(try await roundTrip(c, [String](), "text[]") == [])
        #expect(try await roundTrip(c, [Int.min, 0, Int.max], "int8[]") == [Int.min, 0, Int.max])
        #expect(try await roundTrip(c, [Int64(1), -2], "int8[]") == [1, -2])
        let uuids = [UUID(), UUID()]
        #expect(try await roundTrip(c, uuids, "uuid[]") == uuids)
        #expect(try await roundTrip(c, [1.5, -2.25, .infinity], "float8[]") == [1.5, -2.25, .infinity])
        #expect(try await roundTrip(c, [true, false], "bool[]") == [true, false])
        let dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_700_000_000.25)]
        #expect(try await roundTrip(c, dates, "timestamptz[]") == dates)
        let durations: [Duration] = [.seconds(1), .milliseconds(-1500), .zero]
        #expect(try await roundTrip(c, durations, "interval[]") == durations)
        let optionals: [String?] = ["x", nil, "NULL"]
        #expect(try await roundTrip(c, optionals, "text[]") == optionals)
        // = ANY($1) and unnest($1::…[])
        let any = try await c.query("SELECT count(*) FROM generate_series(1, 10) g WHERE g = ANY($1)", [[2, 4, 99]])
        #expect(try any.first?.decode(Int.self, at: 0) == 2)
        let unnest = try await c.query("SELECT x FROM unnest($1::smallint[]) AS x ORDER BY x", [[3, 1, 2]])
        #expect(try unnest.map { try $0.decode(Int.self, at: 0) } == [1, 2, 3])
    }

    @Test func nullsDecodeOnlyIntoOptionals() async throws {
        let c = try await TestDatabase.connect()
        let noValue: String? = nil
        let row = try #require(try await c.query("SELECT $1::text AS missing, $2::int8 AS also, 1 AS one", [noValue, nil]).first)
        #expect(row.isNull(at: 0))
        #expect(row.isNull(at: 1))
        #expect(!row.isNull(at: 2))
        #expect(try row.decode(String?.self, column: "missing") == nil)
        #expect(try row.decode(Int?.self, at: 1) == nil)
        #expect(try row.decode(Int?.self, column: "one") == 1)
        #expect(row.columnNames == ["missing", "also", "one"])
        let error = try #require(throws: PostgresError.self) { try row.decode(String.self, column: "missing") }
        #expect(error.code == .decoding)
        #expect(error.message.contains("missing"))
        let wrongType = try #require(throws: PostgresError.self) { try row.decode(UUID.self, column: "one") }
        #expect(wrongType.code == .decoding)
        let noColumn = try #require(throws: PostgresError.self) { try row.decode(Int.self, column: "nope") }
        #expect(noColumn.code == .decoding)
    }

    /// Decoding by name with an expected position: the column where the caller expects it, or
    /// elsewhere (found by name), or missing (the same error as by name).
    @Test func decodingByNameAtAnExpectedPosition() async throws {
        let c = try await TestDatabase.connect()
        let row = try #require(try await c.query("SELECT 'a'::text AS first, 2 AS second, 3 AS third").first)
        #expect(try row.decode(String.self, column: "first", expectedAt: 0) == "a")
        #expect(try row.decode(Int.self, column: "third", expectedAt: 2) == 3)
        #expect(try row.decode(Int.self, column: "second", expectedAt: 0) == 2, "found by name when not at the position")
        #expect(try row.decode(Int.self, column: "third", expectedAt: 7) == 3, "a position past the end falls back to the name")
        let missing = try #require(throws: PostgresError.self) { try row.decode(Int.self, column: "fourth", expectedAt: 1) }
        #expect(missing.code == .decoding)
        #expect(missing.message.contains("fourth"))
    }

    @Test func affectedRowsAndTables() async throws {
        try await TestDatabase.withSchema { c, _ in
            try await c.execute("CREATE TABLE items (id int8 PRIMARY KEY, name text NOT NULL, tags text[], doc jsonb)")
            let insert = try await c.query(
                "INSERT INTO items SELECT g, 'n' || g, ARRAY['a', 'b'], '{}' FROM generate_series(1, 5) g")
            #expect(insert.affectedRows == 5)
            let update = try await c.query("UPDATE items SET doc = $1 WHERE id = ANY($2)", [PostgresJSON(string: #"{"k":1}"#), [1, 2]])
            #expect(update.affectedRows == 2)
            let rows = try await c.query("SELECT id, name, tags, doc FROM items ORDER BY id", prepared: true)
            #expect(rows.rows.count == 5)
            #expect(try rows.rows[0].decode([String].self, column: "tags") == ["a", "b"])
            #expect(try rows.rows[0].decode(PostgresJSON.self, column: "doc").string == #"{"k": 1}"#)
            // The prepared path again (cached statement) gives the same result.
            let again = try await c.query("SELECT id, name, tags, doc FROM items ORDER BY id", prepared: true)
            #expect(try again.map { try $0.decode(String.self, column: "name") } == ["n1", "n2", "n3", "n4", "n5"])
        }
    }

    @Test func encodingRejectsZeroBytesInText() async throws {
        let c = try await TestDatabase.connect()
        await #expect(throws: PostgresError.self) { try await c.query("SELECT $1::text", ["a\u{0}b"]) }
        // The connection is still usable.
        #expect(try await c.query("SELECT 1").first?.decode(Int.self, at: 0) == 1)
    }
}
