import Sluice
import SluiceJSON

/// Parsing and amending the provider-shaped request body of a job.
enum RequestBody {
    /// The request as a JSON object, or an `invalid_request` failure.
    static func object(_ bytes: [UInt8]) throws(ProviderFailure) -> [String: JSONValue] {
        guard let value = try? JSONValue.parse(bytes) else {
            throw ProviderFailure(.invalidRequest, "request body is not valid JSON")
        }
        guard case .object(let members) = value else {
            throw ProviderFailure(.invalidRequest, "request body must be a JSON object")
        }
        return members
    }
}
