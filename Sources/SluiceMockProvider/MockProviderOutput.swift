import Foundation
/// The deterministic output and usage rules of the mock provider. Tests import these to know
/// exactly what the server will answer.
public enum MockProviderOutput {
    /// The word used when a prompt has no words at all.
    public static let fallbackWord = "mock"

    /// The response text for a prompt.
    ///
    /// Rule: remove every inline directive (`[[mock: …]]`) from `prompt`, split the rest on
    /// whitespace and newlines into words (if there are none, the single word `"mock"`), and cycle
    /// through them: token *i* (0-based) is `words[i % words.count]`. The text is the `tokens`
    /// tokens joined by single spaces. When streaming, chunk *i* carries exactly token *i*, with a
    /// leading space for every chunk but the first, so the concatenated deltas equal this text
    /// (see ``tokens(forPrompt:tokens:)``).
    ///
    /// Example: `text(forPrompt: "say hi [[mock: tps=5]]", tokens: 5)` is `"say hi say hi say"`.
    /// - Parameters:
    ///   - prompt: the last user message's text, as sent (directives are removed here).
    ///   - tokens: the number of output tokens (≥ 0).
    public static func text(forPrompt prompt: String, tokens: Int) -> String {
        self.tokens(forPrompt: prompt, tokens: tokens).joined()
    }

    /// The streamed pieces of ``text(forPrompt:tokens:)``: piece 0 is the first word, every later
    /// piece is a space followed by the next word. One piece = one output token = one content chunk.
    public static func tokens(forPrompt prompt: String, tokens: Int) -> [String] {
        guard tokens > 0 else { return [] }
        let words = self.words(in: prompt)
        var pieces: [String] = []
        pieces.reserveCapacity(tokens)
        for i in 0..<tokens {
            let word = words[i % words.count]
            pieces.append(i == 0 ? word : " " + word)
        }
        return pieces
    }

    /// The input-token count the mock reports for a request.
    ///
    /// Rule: `ceil(C / 4)` where `C` is the total number of characters (Swift `String.count`,
    /// i.e. grapheme clusters) of all text content of the request: every message's `content` when
    /// it is a string, plus the `text` of every content part/block of type `"text"` when it is an
    /// array, plus Anthropic's top-level `system` (string or text blocks). Inline directives are
    /// counted (they are part of the text); other fields (tool definitions, tool results given as
    /// non-text blocks, names) are not.
    ///
    /// OpenAI reports this as `prompt_tokens` (with `cached_tokens`, when asked, *inside* it);
    /// Anthropic reports it as `input_tokens` (with `cache_read_input_tokens` /
    /// `cache_creation_input_tokens` *in addition*).
    /// - Parameter texts: every text content of the request (messages and system).
    public static func inputTokens(texts: [String]) -> Int {
        inputTokens(characterCount: texts.reduce(0) { $0 + $1.count })
    }

    /// `ceil(characterCount / 4)`; see ``inputTokens(texts:)``.
    public static func inputTokens(characterCount: Int) -> Int {
        (max(0, characterCount) + 3) / 4
    }

    /// Removes every inline directive `[[mock: …]]` from `text`.
    public static func removingDirectives(from text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let open = rest.range(of: "[[mock:") {
            result += rest[rest.startIndex..<open.lowerBound]
            let after = rest[open.upperBound...]
            guard let close = after.range(of: "]]") else {
                rest = after[after.endIndex...]
                break
            }
            rest = after[close.upperBound...]
        }
        result += rest
        return result
    }

    static func words(in prompt: String) -> [String] {
        let cleaned = removingDirectives(from: prompt)
        let words = cleaned.split(whereSeparator: { $0.isWhitespace || $0.isNewline }).map(String.init)
        return words.isEmpty ? [fallbackWord] : words
    }
}
