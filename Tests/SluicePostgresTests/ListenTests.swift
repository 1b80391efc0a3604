import Foundation
import SluicePostgresTestSupport
import Testing

@testable import SluicePostgres

@Suite(.temporaryDatabase(sharedBySuite: true)) struct ListenTests {
    @Test func deliversNotifications() async throws {
        let client = try TestDatabase.client()
        let channel = TestDatabase.uniqueName("Chan")  // mixed case: quoted identifier
        let stream = try await client.startListening([channel, channel + "_other"])
        _ = try await client.query("SELECT pg_notify($1, 'hello'), pg_notify($1 || '_other', '')", [channel])
        _ = try await client.query("NOTIFY \(unescaped: quoteIdentifier(channel)), 'ünïcode payload'")
        var received: [PostgresNotification] = []
        for await event in stream {
            if case .notification(let n) = event { received.append(n) }
            if received.count == 3 { break }
        }
        #expect(received.map(\.channel) == [channel, channel + "_other", channel])
        #expect(received.map(\.payload) == ["hello", "", "ünïcode payload"])
        #expect(received.allSatisfy { $0.pid > 0 })
    }

    @Test func stopsListeningWhenTheConsumerStops() async throws {
        let client = try TestDatabase.client()
        let channel = TestDatabase.uniqueName("stop")
        let admin = try await TestDatabase.connect()
        do {
            let stream = try await client.startListening([channel])
            #expect(try await listenerCount(admin, channel) == 1)
            _ = try await client.query("SELECT pg_notify($1, 'x')", [channel])
            for await _ in stream { break }
        }
        // The dedicated connection closes shortly after the iterator is dropped.
        var count = 1
        for _ in 0..<250 where count > 0 {
            try await Task.sleep(for: .milliseconds(20))
            count = try await listenerCount(admin, channel)
        }
        #expect(count == 0)
    }

    func listenerCount(_ c: PostgresConnection, _ name: String) async throws -> Int {
        try #require(try await c.query(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND application_name = 'sluice-postgres-tests'",
            ["LISTEN \"\(name)\"%"]).first).decode(Int.self, at: 0)
    }

    @Test func reconnectsAfterTerminateAndYieldsReconnected() async throws {
        let client = try TestDatabase.client()
        let channel = TestDatabase.uniqueName("re")
        let admin = try await TestDatabase.connect()
        let stream = try await client.startListening([channel])
        var iterator = stream.makeAsyncIterator()
        _ = try await admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE $1", ["LISTEN \"\(channel)\"%"])
        #expect(await iterator.next() == .reconnected)
        _ = try await admin.query("SELECT pg_notify($1, 'after')", [channel])
        #expect(await iterator.next() == .notification(PostgresNotification(channel: channel, payload: "after", pid: admin.backendPID)))
        await client.shutdown()
        #expect(await iterator.next() == nil)  // shutdown ends the stream
    }
}
