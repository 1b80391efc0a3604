import Foundation
import Logging
import SluiceSupport
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// Runs N copies of `sluice worker --child`, restarts a crashed child with exponential backoff
/// (0.5 s doubling to 30 s, reset after a child ran a minute), forwards SIGTERM/SIGINT to all
/// children, and returns once every child has exited after a shutdown signal.
///
/// Children are started with `posix_spawn` with an empty signal mask and default signal
/// dispositions, so they never inherit the supervisor's blocked or ignored SIGTERM (threads of
/// the Dispatch pool block signals, and an ignored disposition survives exec).
final class WorkerSupervisor: Sendable {
    private struct State {
        var children: [Int: pid_t] = [:]
        var stopping = false
    }

    private let processes: Int
    private let metricsPorts: [Int]?
    private let childArguments: @Sendable (_ slot: Int) -> [String]
    private let logger: Logger
    private let state = Locked(State())

    /// - Parameters:
    ///   - metricsPorts: the metrics port of each slot (logged), nil without metrics.
    ///   - childArguments: the arguments of the child in a slot (a restarted child keeps its slot's).
    init(processes: Int, metricsPorts: [Int]?, childArguments: @escaping @Sendable (_ slot: Int) -> [String], logger: Logger) {
        self.processes = processes
        self.metricsPorts = metricsPorts
        self.childArguments = childArguments
        self.logger = logger
    }

    func run() async -> Int32 {
        // Trapping starts before the first child does, so no signal finds the default action.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        var metadata: Logger.Metadata = ["processes": "\(processes)"]
        if let metricsPorts { metadata["metrics_ports"] = "\(metricsPorts.map(String.init).joined(separator: ","))" }
        logger.info("supervisor starting workers", metadata: metadata)
        return await withTaskGroup(of: Int32?.self) { group in
            group.addTask {
                for await signal in signals { self.shutdown(signal: signal.rawValue) }
                return nil
            }
            for slot in 0..<processes {
                group.addTask { await self.supervise(slot: slot) }
            }
            var worst: Int32 = 0
            var running = processes
            while running > 0, let result = await group.next() {
                guard let code = result else { continue }
                running -= 1
                if code != 0 { worst = code }
            }
            // Every slot is done: stop listening for signals.
            group.cancelAll()
            return worst
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

    private func supervise(slot: Int) async -> Int32 {
        var backoff = 0.5
        while true {
            let started = Date()
            let pid: pid_t? = state.withLock { state in
                if state.stopping { return nil }
                guard let pid = spawn(slot: slot) else { return -1 }
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

    /// Starts one child; nil when spawning failed (logged).
    private func spawn(slot: Int) -> pid_t? {
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
        let argv = ([executable] + childArguments(slot)).map { strdup($0) } + [nil]
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
