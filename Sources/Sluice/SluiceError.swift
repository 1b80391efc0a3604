public import SluicePostgres
import SluiceSupport

/// Every error the submitter API throws.
///
/// Validation and admission failures name the offending `field` and the `rule` it broke (the
/// same names the SQL API raises in `COLUMN` and `CONSTRAINT`), so callers can branch on them.
/// The fields are read-only outside this module.
///
/// `description` is safe to log: the operation, the code, the message and the field and rule.
/// `debugDescription` adds every invalid spec of a batch and the database error behind a
/// `.database` error (with its server detail and failing statement, `String(reflecting:)`).
public struct SluiceError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure this is. Extensible: new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// A job spec (or a batch) is invalid; see `field`, `rule` and `batchErrors`.
        public static let invalidSpec = Code("invalidSpec")
        /// The tenant has `max_queued_jobs` jobs waiting already.
        public static let queueFull = Code("queueFull")
        /// The tenant is paused by an operator.
        public static let tenantPaused = Code("tenantPaused")
        /// The tenant's hard budget for the period is spent.
        public static let budgetExhausted = Code("budgetExhausted")
        /// No such job (or tenant), or not visible to this caller.
        public static let notFound = Code("notFound")
        /// The caller's database role may not do this (row-level security).
        public static let notPermitted = Code("notPermitted")
        /// `wait` reached its timeout before the job finished.
        public static let timeout = Code("timeout")
        /// The database failed (connection, unexpected SQL error); see `underlying`.
        public static let database = Code("database")
        /// An operator command's argument is out of range or malformed; see `field` and `rule`.
        public static let invalidArgument = Code("invalidArgument")
        /// The thing to create exists already, or was done already (a replayed dead letter).
        public static let conflict = Code("conflict")

        public var description: String { name }
    }

    /// One invalid spec of a batch.
    public struct SpecProblem: Sendable, Hashable, Codable {
        /// 0-based position in the batch.
        public internal(set) var index: Int
        public internal(set) var field: String
        public internal(set) var rule: String
        public internal(set) var message: String
    }

    public internal(set) var code: Code
    public internal(set) var message: String
    /// The field at fault (a JSON path into the spec, e.g. `request.messages[0].role`).
    public internal(set) var field: String?
    /// The rule it broke (`required`, `known`, `range`, `format`, `queue_full`, …).
    public internal(set) var rule: String?
    /// For batches: every invalid spec, by index.
    public internal(set) var batchErrors: [SpecProblem]
    /// The database error behind a `.database` error.
    public internal(set) var underlying: PostgresError?
    /// The store operation that failed (`"enqueue"`, `"claim"`, `"complete"`, …), when known;
    /// `description` starts with it.
    public internal(set) var operation: String?

    init(code: Code, message: String, field: String? = nil, rule: String? = nil,
         batchErrors: [SpecProblem] = [], underlying: PostgresError? = nil, operation: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.rule = rule
        self.batchErrors = batchErrors
        self.underlying = underlying
        self.operation = operation
    }

    /// `[<operation>: ]SluiceError.<code>: <message>[ [<field>: <rule>]]` — safe to log.
    public var description: String {
        var text = ErrorFormat.summary("SluiceError", code: code, message)
        if let operation { text = "\(operation): " + text }
        if let field, let rule, !message.hasPrefix(field) { text += " [\(field): \(rule)]" }
        return text
    }

    /// Every field, with the underlying database error's own debug description.
    public var debugDescription: String {
        ErrorFormat.debug("SluiceError", code: code, [
            ("operation", operation), ("message", message), ("field", field), ("rule", rule),
            ("batchErrors", batchErrors.isEmpty ? nil : batchErrors), ("underlying", underlying),
        ])
    }

    static func argument(_ field: String, _ rule: String, _ message: String) -> SluiceError {
        SluiceError(code: .invalidArgument, message: message, field: field, rule: rule)
    }

    static func invalid(_ field: String, _ rule: String, _ message: String) -> SluiceError {
        SluiceError(code: .invalidSpec, message: "\(field): \(message)", field: field, rule: rule)
    }

    /// Maps a database error to a typed one: SQLSTATE class SL carries field (COLUMN) and rule
    /// (CONSTRAINT); everything else is `.database`.
    static func from(_ error: any Error, operation: String?) -> SluiceError {
        var mapped = from(error)
        if mapped.operation == nil { mapped.operation = operation }
        return mapped
    }

    static func from(_ error: any Error) -> SluiceError {
        if let error = error as? SluiceError { return error }
        guard let pg = error as? PostgresError else {
            return SluiceError(code: .database, message: String(describing: error))
        }
        let code: Code
        switch pg.sqlState {
        case "SL001": code = .invalidSpec
        case "SL002": code = .queueFull
        case "SL003": code = .tenantPaused
        case "SL004": code = .budgetExhausted
        case "SL005": code = .notFound
        case "SL006", "42501": code = .notPermitted
        default:
            return SluiceError(code: .database, message: pg.message, underlying: pg)
        }
        var problems: [SpecProblem] = []
        if code == .invalidSpec, let detail = pg.detail, let data = detail.data(using: .utf8) {
            problems = (try? JSONDecoder().decode([SpecProblem].self, from: data)) ?? []
        }
        return SluiceError(code: code, message: pg.message, field: pg.column, rule: pg.constraint,
                           batchErrors: problems, underlying: pg)
    }
}

import Foundation
