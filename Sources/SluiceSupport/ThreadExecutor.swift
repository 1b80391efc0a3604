#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A serial executor backed by one dedicated OS thread.
///
/// The C client libraries Sluice wraps (libpq, hiredis) are blocking and not thread safe per
/// connection. Swift concurrency has only as many cooperative threads as cores (two on our
/// machines), so a blocking network wait on one of them stalls half the process. Instead,
/// every connection is an actor whose `unownedExecutor` is a `ThreadExecutor`: all of its
/// isolated code, including the blocking C calls, runs on the connection's own thread, and
/// callers simply `await` the actor. The C handle never leaves that thread, which also gives
/// the single-isolation-domain rule Swift 6 wants for non-`Sendable` pointers.
///
/// The thread sleeps on a condition variable when it has no work, so an idle executor costs
/// no CPU. Call ``shutdown()`` when the owner is done; the thread exits after draining.
public final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0
    private var stopped = false
    private var thread: Thread?

    /// Starts the executor's thread.
    /// - Parameter name: the thread name shown by debuggers and `top -H` (truncated to 15 bytes by Linux).
    public init(name: String) {
        let thread = Thread { [unowned self] in self.runLoop() }
        thread.name = name
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        condition.signal()
        condition.unlock()
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Stops the thread once the already-enqueued jobs have run. Jobs enqueued later still run
    /// (the thread keeps going until the queue is empty), so awaiting callers never hang.
    public func shutdown() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func runLoop() {
        while true {
            condition.lock()
            while head == jobs.count && !stopped {
                condition.wait()
            }
            if head == jobs.count && stopped {
                condition.unlock()
                return
            }
            let batch = jobs[head...]
            jobs.removeAll(keepingCapacity: true)
            head = 0
            condition.unlock()
            for job in batch {
                job.runSynchronously(on: asUnownedSerialExecutor())
            }
        }
    }
}
