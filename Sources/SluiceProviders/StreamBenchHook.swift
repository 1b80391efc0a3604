import Sluice
/// Entry points for `sluice-bench providers` into internal stream machinery (not for
/// production use).
public enum StreamBenchHook {
    /// Feeds raw OpenAI stream chunks through the stream accumulator and returns the output
    /// tokens the stream reported.
    public static func openAIOutputTokens(_ chunks: [[UInt8]]) throws -> Int {
        var accumulator = OpenAIStreamAccumulator()
        for chunk in chunks { _ = try accumulator.feed(chunk) }
        return try accumulator.finish().usage.outputTokens
    }
}
