import Foundation
import Testing
@testable import PushDeploy

@Suite("JSON field reader")
struct JSONFieldReaderTests {
    private let reader = JSONFieldReader([
        "ref": .string, "deleted": .bool, "repository.full_name": .string, "repository.clone_url": .string,
        "head_commit.message": .string, "commits[].message": .string, "pusher.name": .string,
    ])

    /// What `JSONDecoder` reads from the same document, for comparison.
    private struct Reference: Decodable {
        struct Repository: Decodable {
            var full_name: String?
            var clone_url: String?
        }

        struct Commit: Decodable { var message: String? }
        struct Pusher: Decodable { var name: String? }

        var ref: String?
        var deleted: Bool?
        var repository: Repository?
        var head_commit: Commit?
        var commits: [Commit]?
        var pusher: Pusher?

        var fields: [String: JSONFieldReader.Value] {
            var result: [String: JSONFieldReader.Value] = [:]
            result["ref"] = ref.map { .string($0) }
            result["deleted"] = deleted.map { .bool($0) }
            result["repository.full_name"] = repository?.full_name.map { .string($0) }
            result["repository.clone_url"] = repository?.clone_url.map { .string($0) }
            result["head_commit.message"] = head_commit?.message.map { .string($0) }
            result["commits[].message"] = commits?.last?.message.map { .string($0) }
            result["pusher.name"] = pusher?.name.map { .string($0) }
            return result
        }
    }

    private static let fixtures: [String] = {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../shared/fixtures/webhooks").standardized.path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().map { "\(folder)/\($0)" }
    }()

    @Test func readsWhatJSONDecoderReadsFromTheRealPayloads() throws {
        for path in Self.fixtures {
            guard let bytes = FileManager.default.contents(atPath: path) else { continue }
            let expected = try JSONDecoder().decode(Reference.self, from: bytes).fields
            #expect(try reader.read(Array(bytes)) == expected, "\(path)")
        }
    }

    @Test func unescapesStringsAndTakesTheLastArrayElement() throws {
        let document = #"""
        { "ref" : "refs/heads/ma\u0069n", "deleted": false, "other": [1, -2.5e3, {"x": null}, true, "\"skip\\"],
          "repository": {"full_name": "acme/sh\"op", "nested": {"deep": [[], {}]}},
          "commits": [{"message": "first"}, {"message": "line\nbreak \ud83d\ude80 \/ done"}],
          "head_commit": null, "pusher": {"name": null} }
        """#
        let fields = try reader.read(Array(document.utf8))
        #expect(fields["ref"] == .string("refs/heads/main"))
        #expect(fields["deleted"] == .bool(false))
        #expect(fields["repository.full_name"] == .string("acme/sh\"op"))
        #expect(fields["commits[].message"] == .string("line\nbreak 🚀 / done"))
        #expect(fields["head_commit.message"] == nil)
        #expect(fields["pusher.name"] == nil)
        #expect(fields["repository.clone_url"] == nil)
        // The same as JSONDecoder reads.
        #expect(fields == (try JSONDecoder().decode(Reference.self, from: Data(document.utf8)).fields))
    }

    @Test func escapedKeysAreMatchedUnescaped() throws {
        #expect(try reader.read(Array(#"{"r\u0065f": "x"}"#.utf8)) == ["ref": .string("x")])
    }

    @Test(arguments: [
        "", "   ", "{", "}", #"{"ref": "x""#, #"{"ref" "x"}"#, #"{"ref": "x"} extra"#,
        #"{"ref": 'x'}"#, #"{"ref": "a\qb"}"#, #"{"ref": "\u12"}"#, "{\"ref\": \"a\u{01}b\"}",
        #"{"t": tru}"#, #"{"t": nul}"#, #"[1, 2"#, #"{"ref": "x"#, #"{"a": [1 2]}"#, #"{1: 2}"#,
    ])
    func refusesWhatIsNotJSON(document: String) throws {
        #expect(throws: JSONFieldReader.Failure.self) { try reader.read(Array(document.utf8)) }
        #expect(throws: (any Error).self) { try JSONDecoder().decode(Reference.self, from: Data(document.utf8)) }
    }

    /// JSONDecoder lets these through (a trailing comma, numbers it never reads); they are not JSON all the same.
    @Test(arguments: [#"{"ref": "x",}"#, #"{"n": 01}"#, #"{"n": 1.}"#, #"{"n": -}"#, #"{"n": 1e}"#, #"{"a": [1,]}"#])
    func refusesWhatStrictJSONForbids(document: String) {
        #expect(throws: JSONFieldReader.Failure.self) { try reader.read(Array(document.utf8)) }
    }

    @Test(arguments: [
        (#"{"ref": 42}"#, "ref"),
        (#"{"deleted": "yes"}"#, "deleted"),
        (#"{"repository": "acme/shop"}"#, "repository"),
        (#"{"repository": {"full_name": ["acme"]}}"#, "repository.full_name"),
        (#"{"commits": {"message": "x"}}"#, "commits"),
        (#"{"commits": [{"message": 1}]}"#, "commits[].message"),
        (#"{"commits": ["x"]}"#, "commits[]"),
    ])
    func namesTheFieldOfTheWrongType(document: String, path: String) throws {
        #expect(throws: JSONFieldReader.Failure(path: path, reason: "unexpected value")) {
            try reader.read(Array(document.utf8))
        }
        #expect(throws: (any Error).self) { try JSONDecoder().decode(Reference.self, from: Data(document.utf8)) }
    }

    @Test func aDocumentThatIsNotAnObjectIsRefused() throws {
        #expect(throws: JSONFieldReader.Failure.self) { try reader.read(Array("[1, 2]".utf8)) }
        #expect(throws: JSONFieldReader.Failure.self) { try reader.read(Array(#""text""#.utf8)) }
    }

    @Test func deepNestingIsRefusedWithoutExhaustingTheStack() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONFieldReader.Failure.self) { try reader.read(Array("{\"x\": \(deep)}".utf8)) }
        let fine = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(try reader.read(Array("{\"x\": \(fine), \"ref\": \"r\"}".utf8)) == ["ref": .string("r")])
    }
}
