/// Hexadecimal digits and percent-encoding, shared by the URL parsers (PostgreSQL, Redis) and the
/// PostgreSQL text decoders (`bytea`, `uuid`). (SluiceJSON reads its `\uXXXX` escapes itself: it
/// depends on nothing but the standard library.)
public enum Hex {
    /// The value of one hex digit (either case), or nil.
    @inlinable
    public static func digit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// `%XX`-decodes a URL component; nil for a malformed escape or bytes that are not UTF-8.
    public static func percentDecode(_ s: Substring) -> String? {
        guard s.contains("%") else { return String(s) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let hi = digit(it.removeFirst()), let lo = digit(it.removeFirst()) else { return nil }
                bytes.append(hi << 4 | lo)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
