public import Sluice
import SluiceJSON

extension ProvidersConfiguration {
    static let limitKeys: Set<String> = ["rpm", "tpm", "input_tpm", "output_tpm", "paused", "keys"]
    static let keyLimitKeys: Set<String> = ["rpm", "tpm", "input_tpm", "output_tpm"]
    static let laneNames: Set<String> = ["interactive", "high", "normal", "batch"]

    /// Parses the `limits:` section: `models` (a mapping of `provider/model` to
    /// `{rpm, tpm, input_tpm, output_tpm, paused, keys}`) and `lane_reserve` (lane → fraction
    /// 0–0.95). `keys` makes a key pool: a mapping of API-key id (as in the provider's
    /// `api_keys: [{id, key}]`, or `key-N` for the N-th unnamed key) to that key's own
    /// `{rpm, tpm, input_tpm, output_tpm}`:
    ///
    /// ```yaml
    /// limits:
    ///   models:
    ///     openai/gpt-4o:
    ///       rpm: 1000                       # the model's own limits, shared by every key
    ///       keys:
    ///         team-a: {rpm: 500, tpm: 150000}
    ///         team-b: {rpm: 500, tpm: 150000}
    /// ```
    mutating func mergeLimits(_ section: JSONValue) throws(ProvidersError) {
        guard case .object(let members) = section else {
            throw ProvidersError(.invalidConfiguration, "must be a mapping with models and lane_reserve", field: "limits")
        }
        for key in members.keys.sorted() where key != "models" && key != "lane_reserve" {
            throw ProvidersError(.invalidConfiguration, "unknown field (expected models or lane_reserve)", field: "limits.\(key)")
        }
        if let models = members["models"], !models.isNull {
            guard case .object(let entries) = models else {
                throw ProvidersError(.invalidConfiguration, "must be a mapping of provider/model to limits", field: "limits.models")
            }
            for (name, entry) in entries.sorted(by: { $0.key < $1.key }) {
                let field = "limits.models.\(name)"
                let parts = name.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw ProvidersError(.invalidConfiguration, "must be named provider/model", field: field)
                }
                guard case .object(let values) = entry else {
                    throw ProvidersError(.invalidConfiguration, "must be a mapping of rpm, tpm, input_tpm, output_tpm, paused, keys", field: field)
                }
                for key in values.keys.sorted() where !Self.limitKeys.contains(key) {
                    throw ProvidersError(.invalidConfiguration, "unknown field", field: "\(field).\(key)")
                }
                func limit(_ key: String) throws(ProvidersError) -> Int? {
                    try Self.positiveLimit(values[key], field: "\(field).\(key)")
                }
                var paused = false
                if let value = values["paused"], !value.isNull {
                    guard case .bool(let flag) = value else {
                        throw ProvidersError(.invalidConfiguration, "must be true or false", field: "\(field).paused")
                    }
                    paused = flag
                }
                let limits = ModelLimits(provider: parts[0], model: parts[1], rpm: try limit("rpm"), tpm: try limit("tpm"),
                                         inputTPM: try limit("input_tpm"), outputTPM: try limit("output_tpm"), paused: paused)
                modelLimits.removeAll { $0.provider == limits.provider && $0.model == limits.model && $0.keyID == nil }
                modelLimits.append(limits)
                if let keys = values["keys"], !keys.isNull {
                    for keyLimits in try parseKeyLimits(keys, provider: parts[0], model: parts[1], field: "\(field).keys") {
                        modelLimits.removeAll { $0.provider == keyLimits.provider && $0.model == keyLimits.model && $0.keyID == keyLimits.keyID }
                        modelLimits.append(keyLimits)
                    }
                }
            }
        }
        if let reserve = members["lane_reserve"], !reserve.isNull {
            guard case .object(let entries) = reserve else {
                throw ProvidersError(.invalidConfiguration, "must be a mapping of lane to fraction", field: "limits.lane_reserve")
            }
            for (lane, value) in entries.sorted(by: { $0.key < $1.key }) {
                guard Self.laneNames.contains(lane) else {
                    throw ProvidersError(.invalidConfiguration, "unknown lane (lanes are interactive, high, normal, batch)",
                                         field: "limits.lane_reserve.\(lane)")
                }
                guard let fraction = value.doubleValue, (0...0.95).contains(fraction) else {
                    throw ProvidersError(.invalidConfiguration, "must be a fraction from 0 to 0.95", field: "limits.lane_reserve.\(lane)")
                }
                laneReserve[lane] = fraction
            }
        }
    }

    /// A key pool's entries (`limits.models.P/M.keys`): each key id must be well formed and,
    /// when the provider is configured here, name one of its API keys.
    private func parseKeyLimits(_ section: JSONValue, provider: String, model: String,
                                field: String) throws(ProvidersError) -> [ModelLimits] {
        guard case .object(let entries) = section else {
            throw ProvidersError(.invalidConfiguration, "must be a mapping of API-key id to rpm, tpm, input_tpm, output_tpm", field: field)
        }
        let known = self.provider(named: provider).map { entry in
            entry.apiKeys.indices.map { $0 < entry.apiKeyIDs.count ? entry.apiKeyIDs[$0] : "key-\($0 + 1)" }
        }
        var parsed: [ModelLimits] = []
        for (keyID, entry) in entries.sorted(by: { $0.key < $1.key }) {
            let keyField = "\(field).\(keyID)"
            guard ModelLimits.isKeyID(keyID) else {
                throw ProvidersError(.invalidConfiguration, "key ids must match ^[a-z0-9][a-z0-9_.-]{0,62}$", field: keyField)
            }
            if let known, !known.contains(keyID) {
                throw ProvidersError(.invalidConfiguration,
                                     "provider \(provider) has no API key with this id (its keys: \(known.isEmpty ? "none" : known.joined(separator: ", ")))",
                                     field: keyField)
            }
            guard case .object(let values) = entry else {
                throw ProvidersError(.invalidConfiguration, "must be a mapping of rpm, tpm, input_tpm, output_tpm", field: keyField)
            }
            for key in values.keys.sorted() where !Self.keyLimitKeys.contains(key) {
                throw ProvidersError(.invalidConfiguration, "unknown field (a key has rpm, tpm, input_tpm, output_tpm)", field: "\(keyField).\(key)")
            }
            let limits = ModelLimits(provider: provider, model: model,
                                     rpm: try Self.positiveLimit(values["rpm"], field: "\(keyField).rpm"),
                                     tpm: try Self.positiveLimit(values["tpm"], field: "\(keyField).tpm"),
                                     inputTPM: try Self.positiveLimit(values["input_tpm"], field: "\(keyField).input_tpm"),
                                     outputTPM: try Self.positiveLimit(values["output_tpm"], field: "\(keyField).output_tpm"),
                                     keyID: keyID)
            guard limits.hasRateLimit else {
                throw ProvidersError(.invalidConfiguration, "a key's entry needs at least one of rpm, tpm, input_tpm, output_tpm", field: keyField)
            }
            parsed.append(limits)
        }
        return parsed
    }

    /// A limit value: absent or null is no limit; otherwise a positive integer.
    private static func positiveLimit(_ value: JSONValue?, field: String) throws(ProvidersError) -> Int? {
        guard let value, !value.isNull else { return nil }
        guard let number = value.intValue, number > 0 else {
            throw ProvidersError(.invalidConfiguration, "must be a positive integer", field: field)
        }
        return number
    }
}
