/// A secret (API key, webhook secret, password) that never prints.
///
/// `description`, `debugDescription` and string interpolation all show `<redacted>`; the value
/// is only available through ``revealed``, which call sites use at the last moment (an HTTP
/// header, a libpq conninfo). Keeping secrets in this type makes "keys never reach logs or
/// error messages" a property of the type system rather than of reviewer vigilance.
public struct Redacted: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself. Do not log it.
    public let revealed: String

    public init(_ value: String) { self.revealed = value }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var isEmpty: Bool { revealed.isEmpty }
}
