import SluiceSupport

/// Keeps CPU headroom in a worker process so that work arriving now is picked up at once, even
/// when queued work would keep every core busy (a backlog of short calls).
///
/// It measures the process's scheduling lag — how late a task that sleeps for `probeInterval`
/// wakes up; that is how long any ready task waits for a thread of the cooperative pool (a
/// NOTIFY to handle, a claimed job to start) — and limits the number of *ordinary* jobs running,
/// additive increase / multiplicative decrease: when the lag stays above `lagTarget` the limit
/// drops to 80 % of the ordinary jobs running; while the lag is below half the target and the
/// limit is what holds claims back, it grows by a tenth. Privileged jobs (interactive ones and
/// those of light tenants, the interactive reserve) are not limited. With calls that wait on
/// the network (LLM providers) the lag stays near zero and the limit never binds; it binds when
/// the process itself, or the host, runs out of CPU.
final class LoadGovernor: Sendable {
    /// The adjustable bounds and the target.
    struct Configuration: Sendable {
        /// Lag above which ordinary jobs are limited; nil turns the governor off.
        var lagTarget: Duration?
        /// Ordinary slots of the process (concurrency − interactive reserve): the largest limit.
        var maximum: Int
        /// The limit never goes below this. Default in ``WorkerConfiguration``: an eighth of the slots.
        var minimum: Int
        /// How long the probe sleeps each round.
        var probeInterval: Duration = .milliseconds(5)
        /// How often the limit is adjusted.
        var adjustEvery: Duration = .milliseconds(100)
    }

    private struct State {
        var limit: Int
        /// Smoothed lag in milliseconds.
        var lag: Double = 0
        /// The worst lag of the current adjustment period.
        var worst: Double = 0
    }

    let configuration: Configuration
    private let state: Locked<State>

    init(_ configuration: Configuration) {
        var configuration = configuration
        configuration.maximum = max(1, configuration.maximum)
        configuration.minimum = min(max(1, configuration.minimum), configuration.maximum)
        self.configuration = configuration
        self.state = Locked(State(limit: configuration.maximum))
    }

    /// Ordinary jobs this process may have running now.
    var limit: Int { state.withLock { $0.limit } }

    /// The smoothed scheduling lag, in milliseconds.
    var lagMilliseconds: Double { state.withLock { $0.lag } }

    /// Probes the lag and adjusts the limit until cancelled. `ordinaryRunning` says how many
    /// ordinary jobs run now (the decrease is from there, not from a limit that did not bind).
    func run(ordinaryRunning: @escaping @Sendable () -> Int, onChange: @escaping @Sendable (Int, Double) -> Void) async {
        guard let target = configuration.lagTarget else { return }
        let targetMs = Double(target.components.attoseconds) / 1e15 + Double(target.components.seconds) * 1000
        let clock = ContinuousClock()
        var periodStart = clock.now
        while !Task.isCancelled {
            let before = clock.now
            do { try await Task.sleep(for: configuration.probeInterval) } catch { return }
            let late = clock.now - before - configuration.probeInterval
            let lateMs = max(0, Double(late.components.attoseconds) / 1e15 + Double(late.components.seconds) * 1000)
            let now = clock.now
            let adjust = now - periodStart >= configuration.adjustEvery
            if adjust { periodStart = now }
            let running = adjust ? ordinaryRunning() : 0
            let changed = state.withLock { state -> Int? in
                state.lag = state.lag * 0.8 + lateMs * 0.2
                state.worst = max(state.worst, lateMs)
                guard adjust else { return nil }
                defer { state.worst = 0 }
                let old = state.limit
                if state.lag > targetMs {
                    state.limit = max(configuration.minimum, min(state.limit, Int(Double(running) * 0.8)))
                } else if state.lag < targetMs / 2 && state.worst < targetMs * 4 && running >= state.limit - max(1, state.limit / 20) {
                    state.limit = min(configuration.maximum, state.limit + max(1, state.limit / 10))
                }
                return state.limit == old ? nil : state.limit
            }
            if let changed { onChange(changed, lagMilliseconds) }
        }
    }
}
