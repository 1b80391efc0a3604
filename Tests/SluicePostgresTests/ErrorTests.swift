import Foundation
import SluicePostgresTestSupport
import Testing

@testable import SluicePostgres
import SluiceSupport

@Suite(.temporaryDatabase(sharedBySuite: true)) struct ErrorTests {
    @Test func uniqueViolationCarriesDiagnosticFields() async throws {
        try await TestDatabase.withSchema { c, schema in
            try await c.execute("CREATE TABLE accounts (id int PRIMARY KEY, email text CONSTRAINT accounts_email_key UNIQUE)")
            _ = try await c.query("INSERT INTO accounts VALUES (1, $1)", ["a@example.com"])
            let error = await #expect(throws: PostgresError.self) {
                try await c.query("INSERT INTO accounts VALUES (2, $1)", ["a@example.com"])
            }
            #expect(error?.code == .server)
            #expect(error?.sqlState == "23505")
            #expect(error?.constraint == "accounts_email_key")
            #expect(error?.table == "accounts")
            #expect(error?.schema == schema)
            #expect(error?.detail?.contains("a@example.com") == true)
            #expect(String(describing: error!).contains("23505"))
            // Still usable after a server error.
            #expect(try await c.query("SELECT count(*) FROM accounts").first?.decode(Int.self, at: 0) == 1)
        }
    }

    @Test func customRaiseCarriesColumnConstraintAndHint() async throws {
        let c = try await TestDatabase.connect()
        let error = await #expect(throws: PostgresError.self) {
            try await c.execute("""
                DO $$ BEGIN
                  RAISE EXCEPTION 'unknown lane %', 'gpu' USING ERRCODE = 'SL001', COLUMN = 'lane',
                    CONSTRAINT = 'lane.known', DETAIL = 'lanes: default, batch', HINT = 'create the lane first';
                END $$
                """)
        }
        #expect(error?.code == .server)
        #expect(error?.sqlState == "SL001")
        #expect(error?.column == "lane")
        #expect(error?.constraint == "lane.known")
        #expect(error?.detail == "lanes: default, batch")
        #expect(error?.hint == "create the lane first")
        #expect(error?.message == "unknown lane gpu")
    }

    @Test func syntaxErrorIsServerError() async throws {
        let c = try await TestDatabase.connect()
        let error = await #expect(throws: PostgresError.self) { try await c.query("SELEC 1") }
        #expect(error?.sqlState == "42601")
        #expect(try await c.query("SELECT 2").first?.decode(Int.self, at: 0) == 2)
    }

    @Test func passwordNeverAppearsInErrors() async throws {
        let secret = "s3cr3t-P@ss/word"
        let base = try TestDatabase.configuration()
        // Wrong database with a password (the test server trusts everyone, so the password
        // itself is not checked; the error comes back from the server after sending it).
        var wrongDatabase = base
        wrongDatabase.password = .init(secret)
        wrongDatabase.database = "no_such_database_\(UUID().uuidString.prefix(8))"
        let error1 = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect(configuration: wrongDatabase, logger: TestDatabase.logger)
        }
        #expect(error1?.code == .connectionFailed)
        #expect(!String(describing: error1!).contains(secret))
        #expect(!String(reflecting: error1!).contains(secret))
        // Nothing listening on the port; password given in the URL, percent-encoded.
        let url = "postgres://alice:s3cr3t-P%40ss%2Fword@127.0.0.1:1/db"
        let configuration = try PostgresConfiguration(url: url)
        #expect(configuration.password?.revealed == secret)
        #expect(!String(describing: configuration).contains(secret))
        let error2 = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect(configuration: configuration, logger: TestDatabase.logger)
        }
        #expect(error2?.code == .connectionFailed)
        #expect(!String(describing: error2!).contains(secret))
        #expect(!String(describing: error2!).contains("s3cr3t"))
        // A bad URL containing a password does not echo it either.
        let error3 = #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "postgres://bob:hunter2@host:99999/db") }
        #expect(error3?.code == .invalidURL)
        #expect(!String(describing: error3!).contains("hunter2"))
    }
}

@Suite struct ConfigurationTests {
    @Test func parsesURLs() throws {
        let c = try PostgresConfiguration(url: "postgres://user%20x:p%3Ass@db.example.com:6543/my%2Ddb?sslmode=require&application_name=sluice&connect_timeout=3&target_session_attrs=read-write")
        #expect(c.host == "db.example.com")
        #expect(c.port == 6543)
        #expect(c.user == "user x")
        #expect(c.password?.revealed == "p:ss")
        #expect(c.database == "my-db")
        #expect(c.sslMode == "require")
        #expect(c.applicationName == "sluice")
        #expect(c.connectTimeout == .seconds(3))
        #expect(c.options == ["target_session_attrs": "read-write"])

        let v6 = try PostgresConfiguration(url: "postgresql://[::1]:5433/app")
        #expect(v6.host == "::1")
        #expect(v6.port == 5433)
        #expect(v6.user == "postgres")
        #expect(v6.password == nil)
        #expect(v6.database == "app")

        let minimal = try PostgresConfiguration(url: "postgres://alice@localhost")
        #expect(minimal.port == 5432)
        #expect(minimal.database == "alice")

        let socket = try PostgresConfiguration(url: "postgresql://%2Fvar%2Frun%2Fpostgresql/db")
        #expect(socket.host == "/var/run/postgresql")
    }

    @Test func parsesConninfo() throws {
        let c = try PostgresConfiguration(url: "host=10.0.0.5 port=5444 user=svc password='p w\\'d' dbname=jobs sslmode=disable keepalives_idle=30")
        #expect(c.host == "10.0.0.5")
        #expect(c.port == 5444)
        #expect(c.user == "svc")
        #expect(c.database == "jobs")
        #expect(c.sslMode == "disable")
        #expect(c.options["keepalives_idle"] == "30")
        #expect(c.password?.revealed == "p w'd")
        let quoted = try PostgresConfiguration(url: "user=a password='sp ace\\'s' dbname=x")
        #expect(quoted.password?.revealed == "sp ace's")
    }

    @Test(arguments: [
        "mysql://localhost/db",
        "postgres://host:notaport/db",
        "postgres://host:70000/db",
        "postgres://[::1/db",
        "postgres://user:bad%zzencoding@host/db",
        "postgres://host/db?sslmode",
        "host=x port=abc",
        "host='unterminated",
        "just some words",
        "",
    ])
    func rejectsBadURLs(url: String) throws {
        let error = #expect(throws: PostgresError.self) { try PostgresConfiguration(url: url) }
        #expect(error?.code == .invalidURL)
    }
}
