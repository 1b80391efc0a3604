import Foundation
import Logging
import SluiceSupport
import SluiceWorker
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// Runs N copies of `sluice worker --child`, restarts a crashed child with exponential backoff
/// (0.5 s doubling to 30 s, reset after a child ran a minute), forwards SIGTERM/SIGINT to all
/// children, and returns once every child has exited after a shutdown signal.
///
/// Each child gets a fresh token (`--worker-token`), so the supervisor knows its worker id
/// (`Worker.processID`: host, pid, token). When a child exits abnormally (a signal, or a status
/// other than 0), its running jobs are rescued at once through `rescue` — not after their
/// leases expire — and again 2 s later for a statement the dead process left running in its
/// backend; the restart does not wait for either.
///
/// Children are started with `posix_spawn` with an empty signal mask and default signal
/// dispositions, so they never inherit the supervisor's blocked or ignored SIGTERM (threads of
/// the Dispatch pool block signals, and an ignored disposition survives exec).
final class WorkerSupervisor: Sendable {
    private struct State {
        var children: [Int: pid_t] = [:]
        var stopping = false
    }

    /// Rescues the running jobs of a dead worker process (id, why it died); returns how many.
    typealias Rescue = @Sendable (_ workerID: String, _ reason: String) async throws -> Int

    private let processes: Int
    private let metricsPorts: [Int]?
    private let childArguments: @Sendable (_ slot: Int, _ token: String) -> [String]
    private let rescue: Rescue?
    private let logger: Logger
    private let state = Locked(State())
    private let deaths: AsyncStream<(workerID: String, reason: String)>
    private let deathsContinuation: AsyncStream<(workerID: String, reason: String)>.Continuation

    /// How long after the first rescue of a dead child's jobs the second one runs (for a claim
    /// or completion the dead process left running in its backend, which commits after it died).
    static let secondRescueDelay: Duration = .seconds(2)

    /// - Parameters:
    ///   - metricsPorts: the metrics port of each slot (logged), nil without metrics.
    ///   - childArguments: the arguments of the child in a slot with its worker token (a
    ///     restarted child keeps its slot's arguments and gets a new token).
    ///   - rescue: rescues a dead child's running jobs; nil: leave them to lease expiry.
    init(processes: Int, metricsPorts: [Int]?, childArguments: @escaping @Sendable (_ slot: Int, _ token: String) -> [String],
         rescue: Rescue?, logger: Logger) {
        self.processes = processes
        self.metricsPorts = metricsPorts
        self.childArguments = childArguments
        self.rescue = rescue
        self.logger = logger
        (deaths, deathsContinuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    private enum Finished {
        case slot(Int32)
        case signals
        case rescuer
    }

    func run() async -> Int32 {
        // Trapping starts before the first child does, so no signal finds the default action.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        var metadata: Logger.Metadata = ["processes": "\(processes)"]
        if let metricsPorts { metadata["metrics_ports"] = "\(metricsPorts.map(String.init).joined(separator: ","))" }
        logger.info("supervisor starting workers", metadata: metadata)
        return await withTaskGroup(of: Finished.self) { group in
            group.addTask {
                for await signal in signals { self.shutdown(signal: signal.rawValue) }
                return .signals
            }
            group.addTask {
                await self.rescueDeadChildren()
                return .rescuer
            }
            for slot in 0..<processes {
                group.addTask { .slot(await self.supervise(slot: slot)) }
            }
            var worst: Int32 = 0
            var running = processes
            while running > 0, let result = await group.next() {
                guard case .slot(let code) = result else { continue }
                running -= 1
                if code != 0 { worst = code }
            }
            // Every slot is done: finish the rescues under way (each bounded by its statement's
            // lock timeout), then stop listening for signals.
            deathsContinuation.finish()
            while let result = await group.next() {
                if case .rescuer = result { break }
            }
            group.cancelAll()
            return worst
        }
    }

    /// Rescues the jobs of each dead child as it is reported: at once, and once more after
    /// ``secondRescueDelay``. Ends when the stream is finished and every rescue is done.
    private func rescueDeadChildren() async {
        guard let rescue else {
            for await _ in deaths {}
            return
        }
        await withDiscardingTaskGroup { group in
            for await death in deaths {
                group.addTask {
                    for pass in 1...2 {
                        if pass == 2 { try? await Task.sleep(for: Self.secondRescueDelay) }
                        let metadata: Logger.Metadata = ["worker": "\(death.workerID)", "pass": "\(pass)"]
                        do {
                            let count = try await rescue(death.workerID, death.reason)
                            if count > 0 || pass == 1 {
                                var metadata = metadata
                                metadata["jobs"] = "\(count)"
                                metadata["reason"] = "\(death.reason)"
                                self.logger.warning("rescued the running jobs of a dead worker process", metadata: metadata)
                            }
                        } catch {
                            var metadata = metadata
                            metadata["error"] = "\(error)"
                            self.logger.warning("rescuing the jobs of a dead worker process failed; their leases will expire",
                                                metadata: metadata)
                        }
                    }
                }
            }
        }
    }

    private func shutdown(signal number: Int32) {
        let running: [pid_t] = state.withLock { state in
            state.stopping = true
            return Array(state.children.values)
        }
        logger.notice("forwarding signal to workers", metadata: ["signal": "\(number)", "children": "\(running.count)"])
        for pid in running { kill(pid, number) }
    }

    /// Exit status of a worker process that refused its configuration (EX_CONFIG): not restarted.
    static let configurationExitCode: Int32 = 78
    /// Exit status of a worker process that could not reach a dependency it needs at start
    /// (EX_UNAVAILABLE; Redis, when limits are configured): restarted with the usual backoff,
    /// since the outage may be brief.
    static let unavailableExitCode: Int32 = 69

    private func supervise(slot: Int) async -> Int32 {
        var backoff = 0.5
        while true {
            let started = Date()
            let token = Self.newToken()
            let pid: pid_t? = state.withLock { state in
                if state.stopping { return nil }
                guard let pid = spawn(slot: slot, token: token) else { return -1 }
                state.children[slot] = pid
                return pid
            }
            guard let pid else { return 0 }
            if pid < 0 { return 1 }
            let status = await Self.wait(pid)
            let stoppingNow = state.withLock { state in
                state.children[slot] = nil
                return state.stopping
            }
            let exitedNormally = status & 0x7f == 0
            let code = exitedNormally ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            if !exitedNormally || code != 0 {
                // Died (killed, crashed, failed): its jobs run again now, not when their leases
                // expire. A clean exit (0) has released its jobs itself.
                let reason = exitedNormally ? "exit status \(code)" : "killed by signal \(status & 0x7f)"
                deathsContinuation.yield((workerID: Worker.processID(token: token, pid: pid), reason: reason))
            }
            if stoppingNow { return exitedNormally ? code : 0 }
            if exitedNormally && code == Self.configurationExitCode {
                // The child refused its configuration (e.g. limits without Redis): every
                // restart would fail the same way. Stop the other children and exit with it.
                logger.critical("worker process refused its configuration; not restarting", metadata: ["slot": "\(slot)"])
                let others: [pid_t] = state.withLock { state in
                    state.stopping = true
                    return Array(state.children.values)
                }
                for other in others { kill(other, SIGTERM) }
                return code
            }
            logger.warning("worker process exited; restarting", metadata: [
                "slot": "\(slot)", "pid": "\(pid)", "status": "\(code)", "signaled": "\(!exitedNormally)",
            ])
            if Date().timeIntervalSince(started) > 60 { backoff = 0.5 }
            try? await Task.sleep(for: .milliseconds(Int(backoff * 1000)))
            backoff = min(backoff * 2, 30)
        }
    }

    /// A fresh worker token for one child process: 8 hex digits.
    static func newToken() -> String {
        String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(8)).lowercased()
    }

    /// Starts one child; nil when spawning failed (logged).
    private func spawn(slot: Int, token: String) -> pid_t? {
        let executable = Self.executablePath()
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + childArguments(slot, token)).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, nil, &attributes, argv, environ)
        guard result == 0 else {
            logger.error("cannot start worker process", metadata: ["error": "\(String(cString: strerror(result)))"])
            return nil
        }
        return pid
    }

    /// The running executable (`/proc/self/exe`), so children are the same build.
    private static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if count > 0 { return String(cString: buffer) }
        return CommandLine.arguments[0]
    }

    /// Waits for a child on a dedicated thread (waitpid blocks) and returns its raw status.
    private static func wait(_ pid: pid_t) async -> Int32 {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: status)
            }
            thread.start()
        }
    }
}
