import Foundation
import Testing

@testable import SluicePostgres
import SluicePostgresTestSupport
import SluiceSupport

/// The error pattern (docs/ARCHITECTURE.md, "Errors"): codes compare by value, `description`
/// is redacted, `debugDescription` carries the detail.
@Suite(.temporaryDatabase()) struct PostgresErrorTests {
    @Test func codesCompareByValue() {
        let error = PostgresError(code: .decoding, message: "cannot decode int8 from 'x'")
        #expect(error.code == .decoding)
        #expect(error.code != .encoding)
        #expect(PostgresError.Code.server == .server)
        #expect(Set([PostgresError.Code.server, .server, .poolClosed]).count == 2)
        #expect(error.description == "PostgresError.decoding: cannot decode int8 from 'x'")
    }

    @Test func descriptionLeavesServerDetailAndStatementToDebugDescription() {
        let error = PostgresError(
            code: .server, message: "duplicate key value violates unique constraint \"accounts_email_key\"",
            sqlState: "23505", detail: "Key (email)=(alice@example.com) already exists.", hint: "pick another",
            schema: "s1", table: "accounts", column: "email", constraint: "accounts_email_key",
            query: "INSERT INTO accounts VALUES ($1, $2)")
        #expect(error.description == "PostgresError.server: duplicate key value violates unique constraint \"accounts_email_key\" (SQLSTATE 23505)")
        let debug = String(reflecting: error)
        #expect(debug.hasPrefix("PostgresError(code: server, message: "))
        for part in [
            #"sqlState: "23505""#, #"detail: "Key (email)=(alice@example.com) already exists.""#, #"hint: "pick another""#,
            #"schema: "s1""#, #"table: "accounts""#, #"column: "email""#, #"constraint: "accounts_email_key""#,
            #"query: "INSERT INTO accounts VALUES ($1, $2)""#,
        ] {
            #expect(debug.contains(part), "\(part) missing in \(debug)")
        }
    }

    @Test func serverErrorCarriesTheStatementButNotItsParameters() async throws {
        try await TestDatabase.withSchema { c, _ in
            try await c.execute("CREATE TABLE tokens (id int PRIMARY KEY, token text UNIQUE)")
            _ = try await c.query("INSERT INTO tokens VALUES (1, $1)", ["tok-Secret-1"])
            let error = await #expect(throws: PostgresError.self) {
                try await c.query("INSERT INTO tokens VALUES (2, $1)", ["tok-Secret-1"])
            }
            let description = String(describing: error!)
            let debug = String(reflecting: error!)
            #expect(description.contains("23505"))
            // The server's detail quotes the row value; only the debug form shows it.
            #expect(!description.contains("tok-Secret-1"))
            #expect(!description.contains("INSERT INTO"))
            #expect(debug.contains("already exists"))
            #expect(debug.contains(#"query: "INSERT INTO tokens VALUES (2, $1)""#))
            // A statement run with execute() and one in a pipeline carry their SQL too.
            let syntax = await #expect(throws: PostgresError.self) { try await c.execute("SELEC 1") }
            #expect(syntax?.query == "SELEC 1")
            #expect(!String(describing: syntax!).contains("SELEC 1"))
            let piped = await #expect(throws: PostgresError.self) {
                try await c.pipeline([("SELECT 1", []), ("SELECT 1/0", []), ("SELECT 3", [])])
            }
            #expect(piped?.query == "SELECT 1/0")
        }
    }

    @Test func passwordIsInNeitherDescription() async throws {
        let secret = "pw-Xy7-secret"
        // The SQL text quotes the connection's password: it is redacted in `query`.
        var configuration = try TestDatabase.configuration()
        configuration.password = .init(secret)
        let c = try await PostgresConnection.connect(configuration: configuration, logger: TestDatabase.logger)
        let error = await #expect(throws: PostgresError.self) { try await c.query("SELECT '\(unescaped: secret)' FROM no_such_table") }
        await c.close()
        #expect(error?.query == "SELECT '<redacted>' FROM no_such_table")
        // Connection failures, and URLs that do not parse (also with an unencoded '?' in the password).
        let refused = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect(
                configuration: try PostgresConfiguration(url: "postgres://alice:\(secret)@127.0.0.1:1/db"), logger: TestDatabase.logger)
        }
        #expect(refused?.code == .connectionFailed)
        let badPort = #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "postgres://bob:\(secret)@host:99999/db") }
        let questionMark = #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "postgres://bob:pw?\(secret)@host/db") }
        #expect(questionMark?.code == .invalidURL)
        let conninfo = #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "host=x port=abc password=\(secret)") }
        for thrown in [error, refused, badPort, questionMark, conninfo] {
            let thrown = try #require(thrown)
            #expect(!String(describing: thrown).contains(secret), "\(thrown)")
            #expect(!String(reflecting: thrown).contains(secret), "\(String(reflecting: thrown))")
        }
    }
}
