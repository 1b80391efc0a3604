import Foundation
import Sluice
import SluiceJSON
import Testing
@testable import SluiceProviders

/// Route jobs' requests between the OpenAI Chat Completions and Anthropic Messages formats.
@Suite("Request translation for routes")
struct RequestTranslationTests {
    static func object(_ text: String) throws -> [String: JSONValue] {
        try #require(try JSONValue.parse(Array(text.utf8)).objectValue)
    }

    @Test func formatIsReadFromWhatOnlyOneFormatHas() throws {
        #expect(RequestTranslation.format(of: try Self.object(#"{"messages":[{"role":"user","content":"x"}],"max_tokens":5}"#)) == nil)
        #expect(RequestTranslation.format(of: try Self.object(#"{"messages":[{"role":"system","content":"s"},{"role":"user","content":"x"}]}"#)) == .openai)
        #expect(RequestTranslation.format(of: try Self.object(#"{"system":"s","messages":[{"role":"user","content":"x"}]}"#)) == .anthropic)
        #expect(RequestTranslation.format(of: try Self.object(#"{"messages":[],"tools":[{"name":"f","input_schema":{}}]}"#)) == .anthropic)
    }

    @Test func openAIToAnthropic() throws {
        let body = try Self.object(#"""
            {"messages":[{"role":"system","content":"be brief"},{"role":"developer","content":[{"type":"text","text":"no lists"}]},
                         {"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":[{"type":"text","text":"more"}]}],
             "max_completion_tokens":64,"temperature":1.6,"top_p":0.9,"stop":"END",
             "tools":[{"type":"function","function":{"name":"lookup","description":"d","parameters":{"type":"object"}}}],
             "tool_choice":{"type":"function","function":{"name":"lookup"}}}
            """#)
        let out = try RequestTranslation.adapt(body, to: .anthropic, route: "r")
        #expect(out["system"] == .string("be brief\n\nno lists"))
        #expect(out["messages"]?.arrayValue?.compactMap { $0["role"]?.stringValue } == ["user", "assistant", "user"])
        #expect(out["max_tokens"] == .number(64))
        #expect(out["temperature"] == .number(1))
        #expect(out["top_p"] == .number(0.9))
        #expect(out["stop_sequences"] == .array([.string("END")]))
        #expect(out["tools"] == .array([.object(["name": .string("lookup"), "description": .string("d"),
                                                 "input_schema": .object(["type": .string("object")])])]))
        #expect(out["tool_choice"] == .object(["type": .string("tool"), "name": .string("lookup")]))
        #expect(out["stop"] == nil && out["max_completion_tokens"] == nil)
    }

    @Test func anthropicToOpenAI() throws {
        let body = try Self.object(#"""
            {"system":[{"type":"text","text":"be brief"}],"messages":[{"role":"user","content":"hi"}],"max_tokens":20,
             "stop_sequences":["x"],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"}}
            """#)
        let out = try RequestTranslation.adapt(body, to: .openai, route: "r")
        #expect(out["messages"] == .array([.object(["role": .string("system"), "content": .string("be brief")]),
                                           .object(["role": .string("user"), "content": .string("hi")])]))
        #expect(out["max_tokens"] == .number(20))
        #expect(out["stop"] == .array([.string("x")]))
        #expect(out["tools"] == .array([.object(["type": .string("function"), "function": .object([
            "name": .string("f"), "parameters": .object(["type": .string("object")])])])]))
        #expect(out["tool_choice"] == .string("required"))
        #expect(out["system"] == nil)
    }

    @Test func untranslatableContentIsRefusedAsInvalidRequest() throws {
        let cases = [
            #"{"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c","content":"r"}]}"#,
            #"{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}"#,
            #"{"messages":[{"role":"system","content":"s"},{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"#,
        ]
        for text in cases {
            let error = #expect(throws: ProviderFailure.self) { try RequestTranslation.adapt(try Self.object(text), to: .anthropic, route: "r") }
            #expect(error?.errorClass == .invalidRequest)
            #expect(error?.message.contains("route r") == true)
        }
        // Nothing specific to either format: sent as it is.
        let neutral = try Self.object(#"{"messages":[{"role":"user","content":"x"}],"max_tokens":5,"temperature":0.2}"#)
        #expect(try RequestTranslation.adapt(neutral, to: .anthropic, route: "r") == neutral)
    }
}
