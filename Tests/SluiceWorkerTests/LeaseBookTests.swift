import Foundation
@testable import SluiceWorker
import Testing

/// The lease book's own rules (``LeaseBook``), without Redis: what a lease call's answer does,
/// how the next slice is sized, and what a drop during a lease call does.
@Suite("Lease book: slices, sweeps, drops")
struct LeaseBookTests {
    static func book(duration: Duration = .seconds(30), minimumStarts: Int = 16) -> LeaseBook {
        var configuration = AdmissionConfiguration.Leasing()
        configuration.duration = duration
        configuration.minimumStartsPerSlice = minimumStarts
        return LeaseBook(configuration: configuration, laneReserve: [0.3])
    }

    /// A TPM-like bucket: 100M a minute, `amount` per start; settles to `used`.
    static func bucket(_ amount: Double, key: String = "{t}:rl:t:acme:tpm") -> RateLimiter.Bucket {
        .init(key: key, capacity: 100_000_000, refillPerMillisecond: 100_000_000 / 60_000, amount: amount, floorFraction: 0) { _ in 10 }
    }

    /// Plans one start; answers a renewal with what it asked for.
    static func start(_ book: LeaseBook, _ bucket: RateLimiter.Bucket) -> Bool {
        for _ in 0..<4 {
            switch book.plan([bucket]) {
            case .taken: return true
            case .perJob, .wait: return false
            case .renew(let items): book.complete(items, granted: items.map(\.slice))
            }
        }
        return false
    }

    @Test func nextSliceIsSizedByWhatStartsTookNotByWhatTheyKept() async throws {
        let book = Self.book(duration: .milliseconds(200))
        let bucket = Self.bucket(4_000)
        // The first slice: the minimum, 16 starts.
        #expect(Self.start(book, bucket))
        #expect(book.held[bucket.key] == Double(15 * 4_000))
        // 40 starts, each giving nearly all of its reservation back at settlement (a TPM
        // bucket reserving max_tokens): the lease never runs dry.
        for _ in 0..<40 {
            #expect(Self.start(book, bucket))
            book.credit(bucket, 4_000 - 10)
        }
        try await Task.sleep(for: .milliseconds(300))
        // Renewed after its time: sized by the 41 starts' 164,000 taken (twice that per lease
        // duration), not by the ~400 they kept — which left it at the minimum of 64,000 and sent
        // the starts beyond 16 in flight to the admission script.
        #expect(Self.start(book, bucket))
        let held = try #require(book.held[bucket.key])
        #expect(held >= 2 * 41 * 4_000 - 4_000 - 1, "a slice of \(held + 4_000)")
    }

    @Test func aSweepsGiveBackIsNotARefusal() async throws {
        let book = Self.book(duration: .milliseconds(50))
        let bucket = Self.bucket(100)
        #expect(Self.start(book, bucket))
        try await Task.sleep(for: .milliseconds(100))
        // The background sweep ends the lease and gives its rest back (asking for no slice);
        // Redis answers 0 for it.
        let items = book.sweep()
        #expect(items.count == 1 && items.first?.slice == 0 && (items.first?.giveBack ?? 0) > 0)
        book.complete(items, granted: [0])
        // The next start leases again instead of going to the admission script for a lease
        // duration (what happened to every bucket the sweep touched, once a second).
        guard case .renew(let renewal) = book.plan([bucket]) else {
            Issue.record("a give-back was taken for a refused slice")
            return
        }
        #expect(renewal.first?.slice ?? 0 > 0)
        // A slice Redis refuses does send the bucket per job.
        book.complete(renewal, granted: [0])
        guard case .perJob = book.plan([bucket]) else {
            Issue.record("a refused slice did not send starts to the admission script")
            return
        }
    }

    @Test func aDropDuringALeaseCallRevokesItsSlice() async throws {
        let book = Self.book()
        let bucket = Self.bucket(1, key: "{t}:rl:m:echo/echo:rpm")
        guard case .renew(let items) = book.plan([bucket]) else {
            Issue.record("no lease call planned")
            return
        }
        // A 429 (here, or in another worker through the events channel) while the call is out.
        book.drop([bucket.key])
        book.complete(items, granted: items.map(\.slice))
        // The slice is not used: it goes back with the next call, and starts are decided per job.
        #expect(book.held.isEmpty)
        #expect(book.pendingCredit[bucket.key] == items.first?.slice)
        guard case .perJob = book.plan([bucket]) else {
            Issue.record("a start was admitted from a slice revoked by a drop")
            return
        }
    }

    @Test func startsWaitingForALeaseCallResumeWhenItAnswers() async throws {
        let book = Self.book()
        let bucket = Self.bucket(1, key: "{t}:rl:m:echo/echo:rpm")
        let other = Self.bucket(1, key: "{t}:rl:t:acme:rpm")
        guard case .renew(let items) = book.plan([bucket]) else {
            Issue.record("no lease call planned")
            return
        }
        guard case .wait(let key) = book.plan([bucket]) else {
            Issue.record("a second start did not wait for the call under way")
            return
        }
        #expect(key == bucket.key)
        let waiter = Task {
            await book.waitForAnswer(key)
            return book.plan([bucket])
        }
        // An answer for another bucket does not wake it (it used to, and each wake cost one of
        // the start's few tries); the answer for its own does.
        if case .renew(let otherItems) = book.plan([other]) { book.complete(otherItems, granted: otherItems.map(\.slice)) }
        book.complete(items, granted: items.map(\.slice))
        guard case .taken = await waiter.value else {
            Issue.record("the waiting start did not get the new lease")
            return
        }
    }
}
