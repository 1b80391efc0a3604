import SluiceJSON

/// Extracts message text from OpenAI- and Anthropic-shaped request bodies (used by the echo
/// provider and for input-size estimates).
enum MessageText {
    /// The text of a `content` value: a string, or an array of parts whose `{"type":"text"}`
    /// parts are concatenated.
    static func text(of content: JSONValue?) -> String {
        switch content {
        case .string(let text)?: return text
        case .array(let parts)?:
            var result = ""
            for part in parts {
                if let text = part.stringValue {
                    result += text
                } else if part["type"]?.stringValue == "text" || part["type"] == nil, let text = part["text"]?.stringValue {
                    result += text
                }
            }
            return result
        default: return ""
        }
    }

    /// All text of a request: `system` (Anthropic string or parts) plus every message's content.
    static func allText(of request: JSONValue) -> [String] {
        var texts: [String] = []
        if let system = request["system"] {
            texts.append(text(of: system))
        }
        for message in request["messages"]?.arrayValue ?? [] {
            texts.append(text(of: message["content"]))
        }
        return texts
    }

    /// The text of the last message with role `user`, nil when there is none.
    static func lastUserText(of request: JSONValue) -> String? {
        guard let messages = request["messages"]?.arrayValue else { return nil }
        for message in messages.reversed() where message["role"]?.stringValue == "user" {
            return text(of: message["content"])
        }
        return nil
    }
}
