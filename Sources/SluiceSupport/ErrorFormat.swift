/// The two renderings every Sluice error struct shares (see "Errors" in docs/ARCHITECTURE.md).
///
/// `description` is the ``summary(_:code:_:)`` — `Type.code: message` plus context that is safe
/// to log; `debugDescription` is the ``debug(_:code:_:)`` form — every field that is set, for
/// `String(reflecting:)`. Neither may contain a secret: the callers only pass fields that were
/// redacted when the error was made.
public enum ErrorFormat {
    /// `Type.code: message`.
    public static func summary(_ type: String, code: some CustomStringConvertible, _ message: String) -> String {
        "\(type).\(code): \(message)"
    }

    /// `Type(code: c, name: value, …)`: fields that are nil are left out, the others are shown
    /// with `String(reflecting:)` (so strings are quoted and escaped).
    public static func debug(_ type: String, code: some CustomStringConvertible, _ fields: [(String, Any?)]) -> String {
        var text = "\(type)(code: \(code)"
        for (name, value) in fields {
            guard let value else { continue }
            text += ", \(name): " + String(reflecting: value)
        }
        return text + ")"
    }
}
