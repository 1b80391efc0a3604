public import Foundation
import ServiceLifecycle

/// A mock provider started in-process by ``MockProviderServer/start(configuration:logger:)``.
public struct RunningMockProvider: Sendable {
    /// The bound host (as configured).
    public let host: String
    /// The bound TCP port.
    public let port: Int
    let server: MockProviderServer
    let group: ServiceGroup
    let task: Task<Void, any Error>

    /// `http://HOST:PORT` — the `ANTHROPIC_BASE_URL` (Anthropic paths start with `/v1/messages`).
    public var baseURL: URL { URL(string: "http://\(host):\(port)")! }
    /// `http://HOST:PORT/v1` — the `OPENAI_BASE_URL`.
    public var openAIBaseURL: URL { URL(string: "http://\(host):\(port)/v1")! }

    /// The counters now (the same as `GET /admin/stats`).
    public var stats: MockProviderStats { server.stats }

    /// Zeroes counters, rate-limit windows and `fail_times` counters.
    public func reset() { server.reset() }

    /// Shuts the server down gracefully (stalled streams are closed, paced ones may finish;
    /// after 2 s whatever is left is cancelled) and waits until it has stopped.
    public func stop() async {
        await group.triggerGracefulShutdown()
        let task = self.task
        let watchdog = Task {
            try await Task.sleep(for: .seconds(2))
            task.cancel()
        }
        _ = await task.result
        watchdog.cancel()
    }
}
