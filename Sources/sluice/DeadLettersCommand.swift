import ArgumentParser
import Foundation
import Sluice
import SluiceJSON

#if canImport(Glibc)
import Glibc
#endif

/// `sluice dlq list|show|replay|purge`.
///
/// Replay makes each dead letter a **fresh job linked to the original** (a copy of the dead
/// job's spec with a new id, `replay_of` = the dead job; the dead letter records `replayed_at`,
/// `replayed_as` = the new job and `replayed_by`). The marking and the new job are written in
/// one transaction per batch, so a replay interrupted at any point (Ctrl-C, SIGKILL) and run
/// again queues each dead letter exactly once.
struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "Inspect, replay and purge dead letters.",
        subcommands: [List.self, Show.self, Replay.self, Purge.self])

    struct Filters: ParsableArguments {
        @Option(name: .long, help: "Only this tenant's.") var tenant: String?
        @Option(name: .long, help: "Only this error class (e.g. server_error, invalid_request).") var errorClass: String?
        @Option(name: .long, help: "Only jobs for this model.") var model: String?
        @Option(name: .long, help: "Only dead letters from within this duration (e.g. 1h, 7d).") var since: String?

        var any: Bool { tenant != nil || errorClass != nil || model != nil || since != nil }

        func filter(includeReplayed: Bool = false, replayedBefore: Date? = nil) throws -> DeadLetterFilter {
            DeadLetterFilter(tenant: tenant, errorClass: errorClass, model: model, since: try Parse.since(since),
                             includeReplayed: includeReplayed, replayedBefore: replayedBefore)
        }
    }

    static func write(_ d: DeadLetter, to w: inout JSONWriter, attempts: [AttemptRecord]? = nil) {
        w.beginObject()
        w.put("job_id", d.jobID)
        w.put("tenant", d.tenant)
        w.put("lane", d.lane)
        w.put("provider", d.provider)
        w.put("model", d.model)
        w.put("error_class", d.errorClass)
        w.put("reason", d.reason)
        w.put("last_error", d.lastError)
        w.put("attempts", d.attempts)
        w.put("dead_at", d.deadAt)
        w.put("replayed_at", d.replayedAt)
        w.put("replayed_as", d.replayedAs)
        w.put("replayed_by", d.replayedBy)
        if let attempts {
            w.key("history")
            w.beginArray()
            for a in attempts {
                w.beginObject()
                w.put("attempt", a.attempt)
                w.put("outcome", a.outcome)
                w.put("worker", a.worker)
                w.put("started_at", a.startedAt)
                w.put("finished_at", a.finishedAt)
                w.put("http_status", a.httpStatus)
                w.put("error_class", a.errorClass)
                w.put("error_message", a.errorMessage)
                w.put("duration_ms", a.durationMilliseconds)
                AttemptPrinter.writeRoute(a, to: &w)
                w.endObject()
            }
            w.endArray()
        }
        w.endObject()
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters (not yet replayed unless --replayed).")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var filters: Filters
        @Flag(name: .long, help: "Include dead letters replayed before.") var replayed = false
        @Option(name: .long, help: "At most this many.") var limit: Int = 100
        @Flag(name: .long, help: "Print JSON lines.") var json = false

        func run() async throws {
            let filter = try filters.filter(includeReplayed: replayed)
            guard limit >= 1 else { throw UsageError("--limit must be at least 1") }
            let letters = try await options.withStore("sluice.dlq") { store, _ in try await store.deadLetters(filter, limit: limit) }
            for d in letters {
                if json {
                    Output.line { DeadLettersCommand.write(d, to: &$0) }
                } else {
                    print("\(d.jobID.uuidString.lowercased())  \(d.tenant)  \(d.provider)/\(d.model)  \(d.errorClass): \(d.lastError ?? d.reason)  \(Timestamps.rfc3339(d.deadAt))\(d.replayedAs.map { "  replayed as \($0.uuidString.lowercased())" } ?? "")")
                }
            }
            if !json && letters.isEmpty { print("no dead letters") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a dead letter and its attempt history.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The dead job's id.") var id: String
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            let uuid = try Parse.uuid(id, option: "ID")
            let (letter, attempts) = try await options.withStore("sluice.dlq") { store, _ in
                (try await store.deadLetter(uuid), try await store.attempts(uuid))
            }
            guard let letter else { throw UsageError("no dead letter for job \(id)") }
            if json {
                Output.line { DeadLettersCommand.write(letter, to: &$0, attempts: attempts) }
            } else {
                print("job:      \(letter.jobID.uuidString.lowercased())  tenant \(letter.tenant)  \(letter.provider)/\(letter.model)")
                print("died:     \(Timestamps.rfc3339(letter.deadAt))  after \(letter.attempts) attempts: \(letter.errorClass) (\(letter.reason))")
                if let error = letter.lastError { print("error:    \(error)") }
                if let at = letter.replayedAt {
                    print("replayed: \(Timestamps.rfc3339(at)) by \(letter.replayedBy ?? "?") as \(letter.replayedAs?.uuidString.lowercased() ?? "?")")
                }
                for a in attempts { AttemptPrinter.printText(a) }
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue dead letters again, each exactly once, as fresh jobs linked to the dead ones.",
            discussion: """
                Select dead letters with --id (repeatable) or with filters (--tenant, --error-class, --model, --since; \
                without any, every dead letter not replayed yet). A dead letter replayed before is refused with --id and \
                skipped with filters, unless --force. Interrupted runs can be run again: nothing is queued twice.
                """)
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "A dead job's id (repeatable).") var id: [String] = []
        @OptionGroup var filters: Filters
        @Flag(name: .long, help: "List what would be replayed; change nothing.") var dryRun = false
        @Option(name: .long, help: "At most this many replays per second, e.g. 50/s (default: unpaced).") var rate: String?
        @Option(name: .long, help: "Queue the new jobs in this lane instead of the original one.") var lane: String?
        @Flag(name: .long, help: "Replay dead letters that were replayed before, again.") var force = false
        @Flag(name: .long, help: "Do not ask for confirmation (needed for more than 100 outside a terminal).") var yes = false
        @Option(name: .long, help: "Dead letters per transaction (default 500).") var batchSize: Int = 500
        @Flag(name: .long, help: "Print JSON: {\"matched\", \"replayed\", \"already_replayed\", \"dry_run\", \"items\"}.") var json = false

        func run() async throws {
            if !id.isEmpty && filters.any { throw UsageError("give --id or filters, not both") }
            let ids = try id.map { try Parse.uuid($0, option: "--id") }
            let lane = try Parse.lane(lane)
            let perSecond = try rate.map(Self.parseRate)
            guard (1...10_000).contains(batchSize) else { throw UsageError("--batch-size must be from 1 to 10000") }
            let batch = min(batchSize, perSecond.map { max(1, Int($0)) } ?? batchSize)
            let started = Date()
            let filter = try filters.filter(includeReplayed: force, replayedBefore: started)
            let by = Output.operatorName
            let json = self.json, dryRun = self.dryRun, force = self.force, yes = self.yes

            try await options.withStore("sluice.dlq") { store, _ in
                // What is selected, and whether the operator agrees.
                let total: Int
                if ids.isEmpty {
                    total = try await store.countDeadLetters(filter)
                } else {
                    for id in ids {
                        guard let letter = try await store.deadLetter(id) else {
                            throw UsageError("no dead letter for job \(id.uuidString.lowercased())")
                        }
                        if letter.replayedAs != nil && !force {
                            throw ReplayRefused(message: "dead letter \(id.uuidString.lowercased()) was replayed already as \(letter.replayedAs!.uuidString.lowercased()) at \(letter.replayedAt.map(Timestamps.rfc3339) ?? "?") by \(letter.replayedBy ?? "?"); --force replays it again")
                        }
                    }
                    total = ids.count
                }
                if total > 100 && !yes && !dryRun {
                    guard Output.stdinIsTerminal else {
                        throw UsageError("replaying \(total) dead letters needs --yes (no terminal to confirm on)")
                    }
                    FileHandle.standardError.write(Data("Replay \(total) dead letters? [y/N] ".utf8))
                    guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                        throw ReplayRefused(message: "replay not confirmed; nothing was changed")
                    }
                }

                var items: [(UUID, String, UUID?)] = []
                var replayed = 0, already = 0, done = 0
                let progress = Output.stderrIsTerminal && !json && total > batch
                var after: UUID? = nil
                var remainingIDs = ids[...]
                while true {
                    let chunk: [UUID]
                    if ids.isEmpty {
                        let letters = try await store.deadLetters(filter, after: after, limit: batch)
                        chunk = letters.map(\.jobID)
                        after = chunk.last
                    } else {
                        chunk = Array(remainingIDs.prefix(batch))
                        remainingIDs = remainingIDs.dropFirst(chunk.count)
                    }
                    if chunk.isEmpty { break }
                    if dryRun {
                        for id in chunk { items.append((id, "would_replay", nil)) }
                    } else {
                        for result in try await store.replayDeadLetters(chunk, by: by, force: force, lane: lane) {
                            switch result.outcome {
                            case .replayed: replayed += 1
                            case .alreadyReplayed: already += 1
                            case .notFound: break
                            }
                            items.append((result.jobID, result.outcome.rawValue, result.replayedAs))
                        }
                    }
                    done += chunk.count
                    if progress {
                        FileHandle.standardError.write(Data("\r\(dryRun ? "would replay" : "replayed") \(done)/\(total)".utf8))
                    }
                    if let perSecond, !dryRun {
                        let due = Double(done) / perSecond
                        let elapsed = Date().timeIntervalSince(started)
                        if due > elapsed { try await Task.sleep(for: .milliseconds(Int((due - elapsed) * 1000))) }
                    }
                }
                if progress { FileHandle.standardError.write(Data("\n".utf8)) }

                if json {
                    Output.line { w in
                        w.beginObject()
                        w.put("matched", items.count)
                        w.put("replayed", replayed)
                        w.put("already_replayed", already)
                        w.put("dry_run", dryRun)
                        w.key("items")
                        w.beginArray()
                        for (id, outcome, newID) in items {
                            w.beginObject()
                            w.put("job_id", id)
                            w.put("outcome", outcome)
                            w.put("replayed_as", newID)
                            w.endObject()
                        }
                        w.endArray()
                        w.endObject()
                    }
                } else if dryRun {
                    for (id, _, _) in items { print("would replay \(id.uuidString.lowercased())") }
                    print("\(items.count) dead letters would be replayed (dry run: nothing changed)")
                } else {
                    print("replayed \(replayed) dead letters" + (already > 0 ? " (\(already) replayed before, skipped)" : ""))
                }
            }
        }

        /// `50/s`, `50` or `0.5/s` replays per second.
        static func parseRate(_ text: String) throws -> Double {
            let number = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
            guard let value = Double(number), value > 0, value.isFinite else {
                throw UsageError("--rate: '\(text)' is not a rate; write replays per second, e.g. 50/s")
            }
            return value
        }
    }

    /// A replay the operator did not allow, or that would replay a dead letter twice (exit 1).
    struct ReplayRefused: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete dead letters (and their dead jobs) that died longer ago than --older-than.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Age, e.g. 30d.") var olderThan: String
        @Option(name: .long, help: "Only this tenant's.") var tenant: String?
        @Flag(name: .long, help: "Do not ask for confirmation (needed outside a terminal).") var yes = false
        @Flag(name: .long, help: "Print JSON: {\"purged\"}.") var json = false

        func run() async throws {
            guard let before = try Parse.since(olderThan, option: "--older-than") else { return }
            let json = self.json, yes = self.yes, tenant = self.tenant
            let purged: Int = try await options.withStore("sluice.dlq") { store, _ in
                let count = try await store.countDeadLetters(DeadLetterFilter(tenant: tenant, before: before, includeReplayed: true))
                if count == 0 { return 0 }
                if !yes {
                    guard Output.stdinIsTerminal else { throw UsageError("purging \(count) dead letters needs --yes (no terminal to confirm on)") }
                    FileHandle.standardError.write(Data("Delete \(count) dead letters and their jobs? [y/N] ".utf8))
                    guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                        throw ReplayRefused(message: "purge not confirmed; nothing was deleted")
                    }
                }
                var total = 0
                while true {
                    let n = try await store.purgeDeadLetters(before: before, tenant: tenant)
                    total += n
                    if n < 1000 { break }
                }
                return total
            }
            if json {
                Output.line { w in
                    w.beginObject()
                    w.put("purged", purged)
                    w.endObject()
                }
            } else {
                print("purged \(purged) dead letters")
            }
        }
    }
}

/// One attempt in `sluice dlq show` and `sluice jobs show`.
enum AttemptPrinter {
    /// `target` ("provider/model"), `fallback`, `skipped` ([{target, reason}]), when present.
    static func writeRoute(_ a: AttemptRecord, to w: inout JSONWriter) {
        w.put("target", a.target?.description)
        w.put("fallback", a.fallback)
        if !a.skipped.isEmpty {
            w.key("skipped")
            w.beginArray()
            for skip in a.skipped {
                w.beginObject()
                w.put("target", skip.target.description)
                w.put("reason", skip.reason)
                w.endObject()
            }
            w.endArray()
        }
    }

    static func printText(_ a: AttemptRecord) {
        let target = a.target.map { "\($0)  " } ?? ""
        print("  #\(a.attempt) \(Output.pad(a.outcome, 13)) \(Timestamps.rfc3339(a.startedAt))  \(target)\(a.httpStatus.map { "HTTP \($0) " } ?? "")\(a.errorClass ?? "")\(a.errorMessage.map { ": \($0)" } ?? "")")
        for skip in a.skipped { print("      passed over \(skip.target): \(skip.reason)") }
        if let fallback = a.fallback { print("      \(fallback)") }
    }
}
