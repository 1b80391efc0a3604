public import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A child process of a test, owned by the current ``TestScope``: when the scope ends the
/// child's process group gets SIGTERM, then SIGKILL if it has not exited within the grace
/// period, and the child is reaped.
///
/// Children are started with `posix_spawn` with an empty signal mask and default dispositions
/// for every signal (Dispatch threads block nearly all signals, and a blocked or ignored signal
/// survives exec: a child of such a thread would never see SIGTERM), in a process group of
/// their own (so their own children are stopped with them), with stdin on /dev/null and no file
/// descriptor of the test runner beyond 0–2, and (through `setpriv --pdeathsig TERM`) with a
/// parent-death signal, so even a crash of the test runner, which skips every teardown, does
/// not leave them running. A path that cannot be executed therefore shows as an exit status
/// (setpriv's) rather than as ``SpawnFailed``.
public final class ChildProcess: Sendable {
    public enum Output: Sendable {
        /// /dev/null.
        case discard
        /// A temporary file the scope deletes; read it with ``standardOutput()`` / ``standardError()``.
        case capture
    }

    public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        init(waitStatus status: Int32) {
            self = status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
        }

        public var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signaled(let signal): "killed by signal \(signal)"
            }
        }
    }

    public struct SpawnFailed: Error, CustomStringConvertible {
        public let executable: String
        public let errorNumber: Int32
        public var description: String { "cannot start \(executable): \(String(cString: strerror(errorNumber)))" }
    }

    private struct State {
        var status: ExitStatus?
        var waiters: [Int: CheckedContinuation<ExitStatus?, Never>] = [:]
        /// Waiters whose timeout or cancellation came before they were stored.
        var expired: Set<Int> = []
        var nextWaiter = 0
    }

    /// The child's pid, which is also its process group id.
    public let pid: pid_t
    public let executable: String
    private let outputPath: String?
    private let errorPath: String?
    /// What ``terminate(grace:)`` sends first.
    private let stopSignal: Int32
    private let state = Mutex(State())

    private init(pid: pid_t, executable: String, outputPath: String?, errorPath: String?, stopSignal: Int32) {
        self.pid = pid
        self.executable = executable
        self.outputPath = outputPath
        self.errorPath = errorPath
        self.stopSignal = stopSignal
    }

    /// Starts `executable` (a path, or a name looked up in PATH) owned by the current
    /// ``TestScope``. `environment` nil: the test runner's. `stopSignal` is what the scope sends
    /// first when it ends (SIGKILL follows after the grace period).
    public static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        standardOutput: Output = .discard, standardError: Output = .discard, stopSignal: Int32 = SIGTERM
    ) throws -> ChildProcess {
        let scope = try TestScope.required(for: "a child process (\(executable))")
        let outputPath = standardOutput == .capture ? temporaryPath("out") : nil
        let errorPath = standardError == .capture ? temporaryPath("err") : nil
        // Registered before the spawn so the files go even if spawning fails.
        scope.onExit("capture files of \(executable)") {
            for path in [outputPath, errorPath].compactMap({ $0 }) { unlink(path) }
        }

        let variables = environment ?? ProcessInfo.processInfo.environment
        let (pid, result) = Spawner.shared.run {
            posixSpawn(executable, arguments, environment: variables, outputPath: outputPath, errorPath: errorPath)
        }
        guard result == 0 else { throw SpawnFailed(executable: executable, errorNumber: result) }
        let child = ChildProcess(pid: pid, executable: executable, outputPath: outputPath, errorPath: errorPath, stopSignal: stopSignal)
        child.startReaper()
        scope.onExit("child process \(pid) (\(executable))") { await child.terminate() }
        return child
    }

    /// Runs `executable` to completion (at most `timeout`) and returns its exit status and
    /// output. A child still running at the timeout, or when the calling task is cancelled or
    /// throws, is killed and reaped before this returns.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        timeout: Duration = .seconds(120)
    ) async throws -> (status: ExitStatus, standardOutput: String, standardError: String) {
        try await withTestScope {
            let child = try spawn(executable, arguments, environment: environment, standardOutput: .capture, standardError: .capture)
            guard let status = await child.waitForExit(timeout: timeout) else {
                throw TimedOut(executable: executable, timeout: timeout)
            }
            return (status, child.standardOutput(), child.standardError())
        }
    }

    public struct TimedOut: Error, CustomStringConvertible {
        public let executable: String
        public let timeout: Duration
        public var description: String { "\(executable) did not exit within \(timeout)" }
    }

    /// The exit status, nil while the child runs.
    public var exitStatus: ExitStatus? { state.withLock { $0.status } }

    /// What the child wrote to stdout so far (`.capture` only; "" otherwise).
    public func standardOutput() -> String { Self.read(outputPath) }

    /// What the child wrote to stderr so far (`.capture` only; "" otherwise).
    public func standardError() -> String { Self.read(errorPath) }

    /// Sends `signal` to the child itself (not its group), unless it has already been reaped.
    public func send(_ signal: Int32) {
        // Under the lock the reaper thread takes to reap: the pid cannot have been reused.
        state.withLock { state in
            if state.status == nil { _ = kill(pid, signal) }
        }
    }

    /// Waits until the child has exited and returns its status; nil if it still runs after
    /// `timeout` or the task is cancelled.
    public func waitForExit(timeout: Duration) async -> ExitStatus? {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.expireWaiter(id)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now: ExitStatus?? = state.withLock { state in
                    if let status = state.status { return .some(status) }
                    if state.expired.remove(id) != nil { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            expireWaiter(id)
        }
    }

    /// Resumes waiter `id` with nil (timeout or cancellation); one not stored yet resumes
    /// itself when it gets there.
    private func expireWaiter(_ id: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<ExitStatus?, Never>? in
            guard let waiter = state.waiters.removeValue(forKey: id) else {
                if state.status == nil { state.expired.insert(id) }
                return nil
            }
            return waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Stops the child and everything in its process group: its stop signal (SIGTERM unless
    /// given at spawn), then SIGKILL after `grace`, and waits until the child is reaped and the
    /// group is gone. Records an issue if something survives SIGKILL. Idempotent; the owning
    /// scope calls it when it ends.
    public func terminate(grace: Duration = .seconds(5)) async {
        // Not cancellable: a cancelled test still stops its children.
        await Task {
            if await self.settled(within: .zero) { return }
            self.signalGroup(self.stopSignal)
            if await self.settled(within: grace) { return }
            self.signalGroup(SIGKILL)
            if await self.settled(within: .seconds(10)) { return }
            Issue.record("child process \(self.pid) (\(self.executable)) or its process group survived SIGKILL")
        }.value
    }

    /// True once the child is reaped and no live process remains in its group.
    private func settled(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            if exitStatus != nil && !groupHasLiveMembers() { return true }
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func signalGroup(_ signal: Int32) {
        // The group id cannot be reused while any member exists (a zombie included).
        _ = kill(-pid, signal)
        send(signal)
    }

    /// Whether a process other than a zombie is in the child's process group.
    private func groupHasLiveMembers() -> Bool {
        if kill(-pid, 0) != 0 && errno == ESRCH { return false }
        guard let directory = opendir("/proc") else { return true }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard let member = Int32(name),
                  let stat = try? String(contentsOfFile: "/proc/\(member)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // "pid (comm) state ppid pgrp …"; comm may contain spaces and parentheses.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, fields[2] == "\(pid)" else { continue }
            if fields[0] != "Z" && fields[0] != "X" { return true }
        }
        return false
    }

    /// Waits for the child on a thread of its own (waitid blocks). It first waits without
    /// reaping, then reaps under the state lock, so ``send(_:)`` never signals a reused pid.
    private func startReaper() {
        let pid = self.pid
        let thread = Thread { [self] in
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
            let waiters = state.withLock { state -> [CheckedContinuation<ExitStatus?, Never>] in
                var status: Int32 = 0
                var reaped: pid_t
                repeat { reaped = waitpid(pid, &status, 0) } while reaped < 0 && errno == EINTR
                // ECHILD: someone else reaped it; it is gone either way.
                state.status = reaped == pid ? ExitStatus(waitStatus: status) : .exited(-1)
                defer { state.waiters = [:] }
                return Array(state.waiters.values)
            }
            let status = exitStatus
            for waiter in waiters { waiter.resume(returning: status) }
        }
        thread.name = "reaper \(pid)"
        thread.start()
    }

    /// `setpriv`, which starts each child with a parent-death signal: should the test runner die
    /// without tearing down (a crash), its children get SIGTERM from the kernel instead of
    /// running on. (The parent is the thread that spawned them, hence ``Spawner``.)
    private static let setpriv: String? = access("/usr/bin/setpriv", X_OK) == 0 ? "/usr/bin/setpriv" : nil

    /// posix_spawn with a clean signal state and a process group of its own; runs on the
    /// ``Spawner`` thread. Returns the pid and posix_spawn's result.
    private static func posixSpawn(
        _ executable: String, _ arguments: [String], environment: [String: String], outputPath: String?, errorPath: String?
    ) -> (pid_t, Int32) {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let closeFrom = addCloseFrom { _ = closeFrom(&actions, 3) }

        let command = setpriv.map { [$0, "--pdeathsig", "TERM", "--", executable] } ?? [executable]
        let argv = (command + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }

        var pid: pid_t = 0
        let result = posix_spawnp(&pid, command[0], &actions, &attributes, argv, envp)
        return (pid, result)
    }

    /// One thread that lives as long as the test runner and starts every child: a parent-death
    /// signal fires when the spawning *thread* exits, and Dispatch retires idle threads.
    private final class Spawner: Sendable {
        static let shared = Spawner()

        private let jobs = Mutex<[@Sendable () -> Void]>([])
        private let pending = DispatchSemaphore(value: 0)

        private init() {
            let thread = Thread { [self] in
                while true {
                    pending.wait()
                    while let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { job() }
                }
            }
            thread.name = "sluice test spawner"
            thread.start()
        }

        /// Runs `body` on the spawner thread and waits for its result (a posix_spawn: quick).
        func run<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
            let done = DispatchSemaphore(value: 0)
            let result = Mutex<T?>(nil)
            jobs.withLock { $0.append { result.withLock { $0 = body() }; done.signal() } }
            pending.signal()
            done.wait()
            return result.withLock { $0! }
        }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which the Glibc
    /// module does not import: closes every descriptor from 3 up in the child.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    private static func temporaryPath(_ kind: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("sluice-child-\(UUID().uuidString).\(kind)").path
    }

    private static func read(_ path: String?) -> String {
        guard let path, let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Runs `body` with a child process that is stopped (SIGTERM, SIGKILL after the grace period)
/// and reaped when `body` returns or throws.
public func withChildProcess<R>(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
    standardOutput: ChildProcess.Output = .discard, standardError: ChildProcess.Output = .discard,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (ChildProcess) async throws -> R
) async throws -> R {
    try await withTestScope {
        let child = try ChildProcess.spawn(
            executable, arguments, environment: environment, standardOutput: standardOutput, standardError: standardError)
        return try await body(child)
    }
}
