extension JSONReader {
    /// A number's text and what its scan learnt: up to 19 significant digits accumulate exactly
    /// into `significand`; the exponent saturates at ±1,000,000.
    struct NumberToken {
        var start: Int
        var end: Int
        var negative = false
        var significand: UInt64 = 0
        var significantDigits = 0
        var fractionDigits = 0
        /// Bytes before the exponent part (sign, integer and fraction).
        var mantissaLength = 0
        /// A fraction (`.` and digits) is present.
        var hasPoint = false
        var exponent = 0
        /// Written as an integer: no fraction and no exponent.
        var isIntegerLiteral: Bool { !hasPoint && end - start == mantissaLength }
    }

    /// Reads a number.
    public mutating func readDouble() throws(JSONError) -> Double {
        try expect(.number)
        return try value(of: scanNumber())
    }

    /// Reads a number that is an integer in `Int`'s range (`3`, `3.0` and `3e0` alike).
    public mutating func readInt() throws(JSONError) -> Int {
        try expect(.number)
        let start = index
        let number = try scanNumber()
        if number.significantDigits == 0 { return 0 }
        if number.isIntegerLiteral, number.significantDigits <= 19 {
            // An integer literal: exact, without a detour through Double.
            let limit = UInt64(Int.max) + (number.negative ? 1 : 0)
            guard number.significand <= limit else { throw JSONError(.typeMismatch, at: start) }
            return number.negative ? Int(truncatingIfNeeded: 0 &- number.significand) : Int(number.significand)
        }
        guard let integer = Int(exactly: try value(of: number)) else { throw JSONError(.typeMismatch, at: start) }
        return integer
    }

    /// Scans the number whose first byte (`-` or a digit) is at `index`.
    mutating func scanNumber() throws(JSONError) -> NumberToken {
        var number = NumberToken(start: index, end: index)
        if bytes[index] == UInt8(ascii: "-") {
            number.negative = true
            index += 1
        }
        // Integer part: `0` or a non-zero digit followed by digits.
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        guard isDigit(bytes[index]) else { throw error(.invalidNumber) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw error(.invalidNumber) }
        } else {
            while index < bytes.count, isDigit(bytes[index]) {
                accumulate(bytes[index], into: &number)
                index += 1
            }
        }
        // Fraction: `.` and at least one digit.
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            number.hasPoint = true
            index += 1
            guard index < bytes.count else { throw error(.unexpectedEnd) }
            guard isDigit(bytes[index]) else { throw error(.invalidNumber) }
            while index < bytes.count, isDigit(bytes[index]) {
                accumulate(bytes[index], into: &number)
                number.fractionDigits += 1
                index += 1
            }
        }
        number.mantissaLength = index - number.start
        // Exponent: `e`/`E`, an optional sign, at least one digit.
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            guard index < bytes.count else { throw error(.unexpectedEnd) }
            var negativeExponent = false
            if bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                negativeExponent = bytes[index] == UInt8(ascii: "-")
                index += 1
                guard index < bytes.count else { throw error(.unexpectedEnd) }
            }
            guard isDigit(bytes[index]) else { throw error(.invalidNumber) }
            while index < bytes.count, isDigit(bytes[index]) {
                number.exponent = min(number.exponent * 10 + Int(bytes[index] - UInt8(ascii: "0")), 1_000_000)
                index += 1
            }
            if negativeExponent { number.exponent = -number.exponent }
        }
        number.end = index
        return number
    }

    /// Adds a digit to the significand; leading zeros do not count, digits past the 19th are only
    /// counted (they send the number to the slow path).
    private func accumulate(_ byte: UInt8, into number: inout NumberToken) {
        let digit = UInt64(byte - UInt8(ascii: "0"))
        if number.significantDigits == 0, digit == 0 { return }
        if number.significantDigits < 19 { number.significand = number.significand * 10 + digit }
        number.significantDigits += 1
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    /// Exact powers of ten for the fast path (10^22 is the largest exactly representable one).
    private static let powersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    /// The number as a correctly rounded Double.
    ///
    /// - Throws: ``JSONError/Code/numberOutOfRange`` (at its first byte) when it overflows, or
    ///   is not zero and underflows to zero.
    func value(of number: NumberToken) throws(JSONError) -> Double {
        // Zero (any spelling, `0e-400` included) is exact.
        if number.significantDigits == 0 { return number.negative ? -0.0 : 0.0 }
        // Fast path (Clinger): an exact significand below 2^53 scaled by an exact power of ten is
        // a single correctly rounded operation.
        let scale = number.exponent - number.fractionDigits
        if number.significantDigits <= 19, number.significand <= 1 << 53, (-22...22).contains(scale) {
            let magnitude = Double(number.significand)
            let value = scale < 0 ? magnitude / Self.powersOfTen[-scale] : magnitude * Self.powersOfTen[scale]
            return number.negative ? -value : value
        }
        // Otherwise the C library's correctly rounded conversion of the checked text.
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[number.start..<number.end]), as: UTF8.self)
        guard let value = Double(text), value.isFinite, value != 0 else { throw JSONError(.numberOutOfRange, at: number.start) }
        return value
    }

    /// Checks that the number converts to a finite, non-zero (or exactly zero) Double, converting
    /// only when it could be out of range.
    func checkRange(_ number: NumberToken) throws(JSONError) {
        // A non-zero mantissa of fewer than 100 bytes lies within 1e±99, so with an exponent
        // within ±200 it is well inside a Double's range (about 5e-324 to 1.8e308).
        if number.significantDigits == 0 || (number.mantissaLength < 100 && number.exponent.magnitude <= 200) { return }
        _ = try value(of: number)
    }
}
