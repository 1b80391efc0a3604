import Foundation

/// The migrations of one schema: versioned ones (`NNNN_description.sql`, applied once each, in
/// version order, never edited after release) and repeatable ones (`Rdescription.sql`, see
/// ``PostgresRepeatableMigration``).
public struct PostgresMigrationSet: Sendable, Hashable {
    /// Versioned migrations, sorted by version.
    public var versioned: [PostgresMigration]
    /// Repeatable migrations, sorted by name.
    public var repeatable: [PostgresRepeatableMigration]

    /// Sorts and checks the migrations: versions and repeatable names must be unique (else an
    /// error with code `.migration` naming both).
    public init(versioned: [PostgresMigration], repeatable: [PostgresRepeatableMigration] = []) throws(PostgresError) {
        self.versioned = versioned.sorted { $0.version < $1.version }
        self.repeatable = repeatable.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        for (a, b) in zip(self.versioned, self.versioned.dropFirst()) where a.version == b.version {
            throw PostgresError(code: .migration, message: "duplicate migration version \(a.version): \(a.fileName) and \(b.fileName)")
        }
        for (a, b) in zip(self.repeatable, self.repeatable.dropFirst()) where a.name == b.name {
            throw PostgresError(code: .migration, message: "duplicate repeatable migration \(a.fileName)")
        }
    }

    /// Builds the set from `(file name, SQL)` pairs: `NNNN_description.sql` is versioned,
    /// `Rdescription.sql` repeatable (description: ASCII letters, digits, `_`, `-`). Files that
    /// do not end in `.sql` are ignored; a `.sql` file with another name is an error (code
    /// `.migration`) naming it.
    public init(files: [(name: String, sql: String)]) throws(PostgresError) {
        var versioned: [PostgresMigration] = []
        var repeatable: [PostgresRepeatableMigration] = []
        var versionFiles: [Int: String] = [:]
        for (file, sql) in files.sorted(by: { $0.name < $1.name }) where file.hasSuffix(".sql") {
            let stem = String(file.dropLast(4))
            if stem.first == "R", stem.count > 1, Self.isDescription(stem.dropFirst()) {
                repeatable.append(PostgresRepeatableMigration(name: stem, sql: sql))
                continue
            }
            guard let underscore = stem.firstIndex(of: "_"),
                case let digits = stem[..<underscore], !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit),
                let version = Int(digits),
                case let name = stem[stem.index(after: underscore)...], Self.isDescription(name)
            else {
                throw PostgresError(
                    code: .migration,
                    message: "bad migration file name '\(file)': expected NNNN_description.sql (versioned) or Rdescription.sql (repeatable); description: letters, digits, _ and -")
            }
            if let existing = versionFiles[version] {
                throw PostgresError(code: .migration, message: "duplicate migration version \(version): '\(existing)' and '\(file)'")
            }
            versionFiles[version] = file
            versioned.append(PostgresMigration(version: version, name: String(name), sql: sql))
        }
        try self.init(versioned: versioned, repeatable: repeatable)
    }

    /// Loads the `.sql` files of `directory` (see ``init(files:)``).
    public static func load(directory: String) throws(PostgresError) -> PostgresMigrationSet {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw PostgresError(code: .migration, message: "cannot read the migrations directory \(directory): \(error.localizedDescription)")
        }
        var files: [(name: String, sql: String)] = []
        for file in names where file.hasSuffix(".sql") {
            let path = (directory as NSString).appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: path), let sql = String(data: data, encoding: .utf8) else {
                throw PostgresError(code: .migration, message: "cannot read migration file \(path) as UTF-8")
            }
            files.append((file, sql))
        }
        do {
            return try PostgresMigrationSet(files: files)
        } catch {
            var error = error
            error.message += " (in \(directory))"
            throw error
        }
    }

    private static func isDescription(_ text: Substring) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }
}
