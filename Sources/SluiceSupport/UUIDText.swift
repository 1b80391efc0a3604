public import Foundation

extension UUID {
    /// The canonical text form in lower case (8-4-4-4-12 hex digits), as PostgreSQL prints a
    /// `uuid`. Foundation's `uuidString` formats each UUID through `snprintf`: 3 % of a worker's
    /// CPU in the echo end-to-end benchmark, where every job's id is bound and written as text.
    public var lowercasedText: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(36)
        appendLowercasedText(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends ``lowercasedText``'s 36 bytes to `buffer`.
    public func appendLowercasedText(into buffer: inout [UInt8]) {
        let digits: StaticString = "0123456789abcdef"
        withUnsafeBytes(of: uuid) { raw in
            digits.withUTF8Buffer { hex in
                for (index, byte) in raw.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 { buffer.append(UInt8(ascii: "-")) }
                    buffer.append(hex[Int(byte >> 4)])
                    buffer.append(hex[Int(byte & 0x0f)])
                }
            }
        }
    }
}
