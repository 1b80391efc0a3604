import Foundation
import SluiceTestScope
import Synchronization
import Testing

@testable import SluiceRedis

/// Publish/subscribe (``RedisClient/subscribe(to:settings:)``): messages arrive, and a
/// subscription outlives its server going away.
@Suite("Publish/subscribe", .redisKeys)
struct RedisSubscriptionTests {
    /// Collects a subscription's events in the background.
    final class Collector: Sendable {
        let events = Mutex<[RedisSubscriptionEvent]>([])

        init(_ stream: AsyncStream<RedisSubscriptionEvent>) throws {
            let scope = try TestScope.required(for: "a subscription")
            let task = Task { [self] in for await event in stream { events.withLock { $0.append(event) } } }
            scope.onExit("subscription") { task.cancel() }
        }

        var all: [RedisSubscriptionEvent] { events.withLock { $0 } }

        /// Waits (at most 10 s) until `condition` holds for the events so far.
        func wait(_ what: String, _ condition: ([RedisSubscriptionEvent]) -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if condition(all) { return }
                try await Task.sleep(for: .milliseconds(20))
            }
            Issue.record("timed out waiting for \(what); events: \(all)")
        }
    }

    @Test func messagesArriveInOrder() async throws {
        let client = try TestRedis.client()
        let channel = TestRedis.prefix() + ":events"
        let events = try Collector(client.subscribe(to: [channel, channel + ":other"]))
        try await events.wait("the subscription") { $0 == [.subscribed] }
        for payload in ["openai/gpt-4o", "anthropic/claude-sonnet-4-5"] {
            #expect(try await client.command(["PUBLISH", channel, payload]).int == 1)
        }
        #expect(try await client.command(["PUBLISH", channel + ":other", "x"]).int == 1)
        try await events.wait("three messages") { $0.count == 4 }
        #expect(events.all == [.subscribed, .message(channel: channel, payload: "openai/gpt-4o"),
                               .message(channel: channel, payload: "anthropic/claude-sonnet-4-5"),
                               .message(channel: channel + ":other", payload: "x")])
    }

    @Test func aSubscriptionReportsItsServerGoingAwayAndSubscribesAgain() async throws {
        let server = try RedisServerProcess()
        try await server.start()
        let scope = try TestScope.required(for: "a Redis server")
        scope.onExit("Redis server") { await server.stop() }
        let client = try TestRedis.client(try RedisConfiguration(url: server.url))
        var settings = RedisSubscriptionSettings()
        settings.retry = .milliseconds(100)
        let events = try Collector(client.subscribe(to: ["events"], settings: settings))
        try await events.wait("the subscription") { $0 == [.subscribed] }
        await server.stop()
        try await events.wait("the lost server reported") { $0.count >= 2 }
        guard case .disconnected = events.all[1] else {
            Issue.record("expected a disconnect, got \(events.all)")
            return
        }
        try await server.start()
        // Reconnect attempts fail until the server is back; then it subscribes again.
        try await events.wait("a new subscription") { $0.last == .subscribed }
        #expect(events.all.dropFirst().dropLast().allSatisfy { if case .disconnected = $0 { true } else { false } })
        #expect(try await client.command(["PUBLISH", "events", "back"]).int == 1)
        try await events.wait("the message after the restart") { $0.last == .message(channel: "events", payload: "back") }
    }
}
