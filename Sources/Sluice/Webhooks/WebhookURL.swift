import Foundation

/// Webhook URLs as they may be shown: a URL's userinfo, query and fragment can carry tokens, so
/// messages, logs and listings use ``redacted(_:)``.
public enum WebhookURL {
    /// `url` without userinfo, query and fragment.
    public static func redacted(_ url: String) -> String {
        var s = Substring(url)
        if let q = s.firstIndex(where: { $0 == "?" || $0 == "#" }) { s = s[..<q] }
        if let schemeEnd = s.range(of: "://") {
            let authorityStart = schemeEnd.upperBound
            let authorityEnd = s[authorityStart...].firstIndex(of: "/") ?? s.endIndex
            if let at = s[authorityStart..<authorityEnd].lastIndex(of: "@") {
                return String(s[..<authorityStart]) + String(s[s.index(after: at)...])
            }
        }
        return String(s)
    }
}
