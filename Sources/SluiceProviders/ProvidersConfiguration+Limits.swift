public import Sluice
import SluiceJSON

extension ProvidersConfiguration {
    static let limitKeys: Set<String> = ["rpm", "tpm", "input_tpm", "output_tpm", "paused", "keys"]
    static let keyLimitKeys: Set<String> = ["rpm", "tpm", "input_tpm", "output_tpm"]
    static let laneNames: Set<String> = ["interactive", "high", "normal", "batch"]

    /// Parses the `limits:` section: `models` (a mapping of `provider/model` to
    /// `{rpm, tpm, input_tpm, output_tpm, paused, keys}`, where `keys` maps an API key's id —
    /// from the provider's `api_keys` — to that key's `{rpm, tpm, input_tpm, output_tpm}`: a key
    /// pool, as `sluice limits set --key-id` configures it) and `lane_reserve` (lane → fraction
    /// 0–0.95).
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
                    throw ProvidersError(.invalidConfiguration, "must be a mapping of rpm, tpm, input_tpm, output_tpm, paused", field: field)
                }
                for key in values.keys.sorted() where !Self.limitKeys.contains(key) {
                    throw ProvidersError(.invalidConfiguration, "unknown field", field: "\(field).\(key)")
                }
                func limit(_ key: String, in values: [String: JSONValue], _ field: String) throws(ProvidersError) -> Int? {
                    guard let value = values[key], !value.isNull else { return nil }
                    guard let number = value.intValue, number > 0 else {
                        throw ProvidersError(.invalidConfiguration, "must be a positive integer", field: "\(field).\(key)")
                    }
                    return number
                }
                func limit(_ key: String) throws(ProvidersError) -> Int? { try limit(key, in: values, field) }
                var paused = false
                if let value = values["paused"], !value.isNull {
                    guard case .bool(let flag) = value else {
                        throw ProvidersError(.invalidConfiguration, "must be true or false", field: "\(field).paused")
                    }
                    paused = flag
                }
                let limits = ModelLimits(provider: parts[0], model: parts[1], rpm: try limit("rpm"), tpm: try limit("tpm"),
                                         inputTPM: try limit("input_tpm"), outputTPM: try limit("output_tpm"), paused: paused)
                modelLimits.removeAll { $0.provider == limits.provider && $0.model == limits.model }
                modelLimits.append(limits)
                if let keys = values["keys"], !keys.isNull {
                    guard case .object(let pool) = keys else {
                        throw ProvidersError(.invalidConfiguration, "must be a mapping of API key id to limits", field: "\(field).keys")
                    }
                    // The provider's key ids, when it is configured (in this file or an earlier one).
                    let known = providers.first { $0.name == parts[0] }.map(\.apiKeyIDs)
                    for (id, entry) in pool.sorted(by: { $0.key < $1.key }) {
                        let keyField = "\(field).keys.\(id)"
                        guard ModelLimits.isKeyID(id) else {
                            throw ProvidersError(.invalidConfiguration, "a key id must match ^[a-z0-9][a-z0-9_.-]{0,62}$", field: keyField)
                        }
                        if let known, !known.isEmpty, !known.contains(id) {
                            throw ProvidersError(.invalidConfiguration, "provider \(parts[0]) has no API key with this id (api_keys: [{id, key|env}])",
                                                 field: keyField)
                        }
                        guard case .object(let keyValues) = entry else {
                            throw ProvidersError(.invalidConfiguration, "must be a mapping of rpm, tpm, input_tpm, output_tpm", field: keyField)
                        }
                        for key in keyValues.keys.sorted() where !Self.keyLimitKeys.contains(key) {
                            throw ProvidersError(.invalidConfiguration, "unknown field", field: "\(keyField).\(key)")
                        }
                        let keyLimits = ModelLimits(provider: parts[0], model: parts[1], rpm: try limit("rpm", in: keyValues, keyField),
                                                    tpm: try limit("tpm", in: keyValues, keyField),
                                                    inputTPM: try limit("input_tpm", in: keyValues, keyField),
                                                    outputTPM: try limit("output_tpm", in: keyValues, keyField), keyID: id)
                        guard keyLimits.hasRateLimit else {
                            throw ProvidersError(.invalidConfiguration, "needs at least one of rpm, tpm, input_tpm, output_tpm", field: keyField)
                        }
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
}
