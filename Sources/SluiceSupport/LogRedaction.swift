import Foundation

/// Masks personal data and credentials in free text before it reaches a log line.
///
/// Use it for every log field whose text could carry request or response data (a provider's
/// error message, an exception's description); fixed vocabulary (ids, lanes, counts) needs
/// nothing. Prompts and outputs are never logged at all: this is the second line of defence
/// for the text that is.
///
/// What is masked, in this order:
/// - API keys and bearer tokens (`sk-…`, `sk-ant-…`, `Bearer …`): `sk-<redacted>`,
///   `Bearer <redacted>` (``Redacted/scrubbingKeyShapedTokens(_:)``);
/// - e-mail addresses: the local part, `<email>@example.com`;
/// - phone numbers: `<phone>` — international numbers (`+` then 8 to 15 digits, spaces, dots,
///   dashes or parentheses between them), North American `(415) 555-0100`, `415-555-0100`,
///   `415.555.0100`, and numbers with a trunk `0` in groups (`020 7946 0958`, `030-1234-5678`).
///   Dates, times, UUIDs, version numbers and plain integers are left alone.
public enum LogRedaction {
    /// `text` with keys, bearer tokens, e-mail local parts and phone numbers masked.
    public static func redact(_ text: String) -> String {
        var result = Redacted.scrubbingKeyShapedTokens(text)
        if result.contains("@") {
            result = replace(email, in: result, with: "<email>@$2")
        }
        if result.contains(where: \.isNumber) {
            for pattern in phones {
                result = replace(pattern, in: result, with: "<phone>")
            }
        }
        return result
    }

    private static func replace(_ pattern: NSRegularExpression, in text: String, with template: String) -> String {
        let range = NSRange(text.startIndex..<text.endIndex, in: text)
        return pattern.stringByReplacingMatches(in: text, options: [], range: range, withTemplate: template)
    }

    /// A local part (RFC 5322 atom characters and dots) before `@` and a domain with a dot.
    /// (NSRegularExpression is immutable and documented as safe to share between threads.)
    nonisolated(unsafe) private static let email = try! NSRegularExpression(
        pattern: #"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)@([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)"#)

    /// Phone number shapes, most specific first. Each must stand alone: no digit, letter or
    /// `-` directly before or after it.
    nonisolated(unsafe) private static let phones: [NSRegularExpression] = [
        // +44 20 7946 0958, +1 (415) 555-0100, +4915112345678
        #"(?<![\w-])\+\d(?:[ .()-]{0,2}\d){7,14}(?![\w-])"#,
        // (415) 555-0100, 415-555-0100, 415.555.0100, 415 555 0100
        #"(?<![\w(-])(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])"#,
        // 020 7946 0958, 030-1234-5678, 0151 1234 5678
        #"(?<![\w-])0\d{1,4}[ -]\d{3,4}[ -]\d{3,4}(?![\w-])"#,
    ].map { try! NSRegularExpression(pattern: $0) }
}
