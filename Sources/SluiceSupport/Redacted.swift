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

extension Redacted {
    /// `text` with tokens that look like API keys replaced by `<redacted>`: `sk-` followed by 8+
    /// key characters (`sk-…`, `sk-ant-…`, `sk-proj-…`, masked keys like `sk-abc1****wxyz`), and
    /// the value after `Bearer `. For text that may quote a key nobody put in a ``Redacted``
    /// (a provider's error message, an error's message); keys that are known exactly are
    /// better removed by value too (SluiceProviders' `SecretRedactor`).
    public static func scrubbingKeyShapedTokens(_ text: String) -> String {
        guard text.contains("sk-") || text.contains("Bearer ") || text.contains("bearer ") else { return text }
        var output = ""
        output.reserveCapacity(text.utf8.count)
        let scalars = Array(text.unicodeScalars)
        var index = 0
        func isKeyChar(_ scalar: Unicode.Scalar) -> Bool {
            scalar.properties.isAlphabetic && scalar.isASCII || ("0"..."9").contains(scalar)
                || scalar == "-" || scalar == "_" || scalar == "*" || scalar == "."
        }
        while index < scalars.count {
            let rest = scalars.count - index
            var prefixLength = 0
            if rest >= 3 && scalars[index] == "s" && scalars[index + 1] == "k" && scalars[index + 2] == "-"
                && (index == 0 || !isKeyChar(scalars[index - 1])) {
                prefixLength = 3
            } else if rest >= 7, String(String.UnicodeScalarView(scalars[index..<(index + 7)])).lowercased() == "bearer " {
                prefixLength = 7
            }
            if prefixLength > 0 {
                var end = index + prefixLength
                while end < scalars.count && isKeyChar(scalars[end]) { end += 1 }
                if end - index - prefixLength >= 8 {
                    output.unicodeScalars.append(contentsOf: scalars[index..<(index + prefixLength)])
                    output += "<redacted>"
                    index = end
                    continue
                }
            }
            output.unicodeScalars.append(scalars[index])
            index += 1
        }
        return output
    }
}
