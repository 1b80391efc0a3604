/// One server-sent event (or `data:` line) of a planned stream.
struct MockStreamEvent: Sendable {
    enum Kind: Sendable {
        /// Sent at once, before the time-to-first-token delay (OpenAI role chunk, Anthropic `message_start`…).
        case preamble
        /// The body of the stream, in order; events with `tokens > 0` are the *content chunks*
        /// that pacing and the stream-fault directives count.
        case body
        /// The end marker, left out by `truncate=1` (OpenAI usage chunk and `[DONE]`,
        /// Anthropic `message_delta` and `message_stop`).
        case terminal
    }

    var kind: Kind
    var text: String
    /// Output tokens this event carries.
    var tokens: Int
}
