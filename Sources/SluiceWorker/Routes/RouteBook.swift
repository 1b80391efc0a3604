import Foundation
import Logging
import Sluice
import SluiceSupport

/// The routes of `sluice.routes`, cached by a worker process: read again after
/// `NOTIFY sluice_limits` (a trigger on the table sends it) or every `maxAge`, so an operator's
/// `sluice routes set` applies on every worker's next start of a route job.
final class RouteBook: Sendable {
    /// What a lookup found.
    enum Lookup: Sendable {
        case found(Route)
        /// No route of that name (deleted after the job was queued).
        case missing
        /// The routes could not be read and none were read before.
        case unavailable(String)
    }

    private struct State {
        var routes: [String: Route]?
        var fetchedAt: ContinuousClock.Instant?
        var stale = true
    }

    let store: JobStore
    let maxAge: Duration
    let logger: Logger
    private let state = Locked(State())

    init(store: JobStore, maxAge: Duration = .seconds(5), logger: Logger) {
        self.store = store
        self.maxAge = maxAge
        self.logger = logger
    }

    /// Routes changed: read them again before the next lookup.
    func invalidate() {
        state.withLock { $0.stale = true }
    }

    /// The route called `name`.
    func route(named name: String) async -> Lookup {
        let (cached, fresh) = state.withLock { s -> ([String: Route]?, Bool) in
            (s.routes, !s.stale && (s.fetchedAt.map { ContinuousClock.now - $0 < maxAge } ?? false))
        }
        var routes = cached
        if !fresh {
            do {
                let read = Dictionary(try await store.routes().map { ($0.name, $0) }, uniquingKeysWith: { _, b in b })
                state.withLock { s in
                    s.routes = read
                    s.fetchedAt = .now
                    s.stale = false
                }
                routes = read
            } catch {
                logger.warning("reading routes failed; using the last ones", metadata: ["error": "\(error)"])
                if routes == nil { return .unavailable("\(error)") }
            }
        }
        guard let route = routes?[name] else { return .missing }
        return .found(route)
    }
}
