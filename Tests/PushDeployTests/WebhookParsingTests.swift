import Foundation
import Testing
@testable import PushDeploy

@Suite("Webhook parsing")
struct WebhookParsingTests {
    @Test func formBodiesDecode() {
        let body = Array("a=1&payload=%7B%22ref%22%3A+%22x%22%7D&b=".utf8)
        #expect(FormBody.value("payload", in: body) == "{\"ref\": \"x\"}")
        #expect(FormBody.value("b", in: body) == "")
        #expect(FormBody.value("missing", in: body) == nil)
        #expect(FormBody.value("payload", in: Array("payload=%7".utf8)) == nil)
        #expect(FormBody.value("payload", in: Array("payload=%ZZ".utf8)) == nil)
    }

    @Test(arguments: [
        ("https://github.com/acme/shop.git", "acme/shop", true),
        ("git@github.com:acme/shop.git", "acme/shop", true),
        ("ssh://git@github.com/Acme/Shop", "acme/shop", true),
        ("https://github.com/acme/shop.git", "acme/shopfront", false),
        ("https://gitlab.com/group/sub/shop.git", "group/sub/shop", true),
    ])
    func repositoriesMatchByName(url: String, name: String, matches: Bool) {
        #expect(RepositoryMatcher.matches(configURL: url, name: name, urls: []) == matches)
    }

    @Test func repositoriesMatchByURL() {
        #expect(RepositoryMatcher.matches(configURL: "git@example.org:acme/shop.git", name: nil,
                                          urls: ["https://example.org/acme/shop"]))
        #expect(!RepositoryMatcher.matches(configURL: "/srv/git/shop.git", name: "acme/shop", urls: []))
    }

    @Test func constantTimeEquality() {
        #expect(ConstantTime.equals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!ConstantTime.equals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!ConstantTime.equals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!ConstantTime.equals([UInt8](), Array("a".utf8)))
        #expect(ConstantTime.equals([UInt8](), [UInt8]()))
    }

    @Test func commitIDs() {
        #expect(CommitID.isFull(String(repeating: "a", count: 40)))
        #expect(!CommitID.isFull("abc"))
        #expect(CommitID.isZero(String(repeating: "0", count: 40)))
        #expect(!CommitID.isValid("xyz1"))
    }

    /// A GitHub push request around `body`, as the signature check leaves it.
    private func githubPush(_ body: [UInt8]) -> WebhookRequest {
        WebhookRequest(headers: ["x-github-event": "push", "content-type": "application/json"], body: body)
    }

    private func isMalformed(_ body: [UInt8]) -> Bool {
        do {
            _ = try GitHubWebhook.parse(githubPush(body))
            return false
        } catch {
            if case .malformed = error { return true }
            return false
        }
    }

    @Test(arguments: [
        "", "   ", "{", "}", #"{"ref": "x""#, #"{"ref" "x"}"#, #"{"ref": "x"} extra"#,
        #"{"ref": 'x'}"#, #"{"ref": "a\qb"}"#, #"{"ref": "\u12"}"#, "{\"ref\": \"a\u{01}b\"}",
        #"{"t": tru}"#, #"{"t": nul}"#, #"[1, 2"#, #"{"ref": "x"#, #"{"a": [1 2]}"#, #"{1: 2}"#,
        "[1, 2]", #""text""#,
    ])
    func aGitHubPushThatIsNotJSONIsMalformed(document: String) {
        #expect(isMalformed(Array(document.utf8)))
    }

    @Test(arguments: [
        #"{"ref": 42}"#, #"{"ref": "refs/heads/main", "after": "0123456789012345678901234567890123456789", "deleted": "yes"}"#,
        #"{"ref": "refs/heads/main", "after": "0123456789012345678901234567890123456789", "repository": "acme/shop"}"#,
        #"{"ref": "refs/heads/main", "after": "0123456789012345678901234567890123456789", "repository": {"full_name": ["acme"]}}"#,
        #"{"ref": "refs/heads/main", "after": "0123456789012345678901234567890123456789", "commits": {"message": "x"}}"#,
        #"{"ref": "refs/heads/main", "after": "0123456789012345678901234567890123456789", "commits": [{"message": 1}]}"#,
    ])
    func aFieldOfTheWrongTypeIsMalformed(document: String) {
        #expect(isMalformed(Array(document.utf8)))
    }

    @Test("invalid UTF-8 in a string, or around it, is malformed, not read as replacement characters")
    func invalidUTF8IsMalformed() {
        let after = "0123456789012345678901234567890123456789"
        let valid = Array(#"{"ref": "refs/heads/main", "after": "\#(after)", "pusher": {"name": "ann"}}"#.utf8)
        #expect(!isMalformed(valid))
        for bad: [UInt8] in [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf]] {
            let name = valid.firstRange(of: Array("ann".utf8))!
            var body = valid
            body.replaceSubrange(name, with: bad)
            #expect(isMalformed(body), "bytes \(bad) in a string")
        }
    }

    @Test func deepNestingIsRefusedWithoutExhaustingTheStack() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(isMalformed(Array("{\"x\": \(deep), \"ref\": \"refs/heads/main\"}".utf8)))
    }

    @Test func aGitHubPushIsReadFromItsFields() throws {
        let after = "0123456789abcdef0123456789abcdef01234567"
        let body = #"{"ref": "refs/heads/main", "after": "\#(after)", "deleted": false, "repository": {"full_name": "acme/shop", "clone_url": "https://github.com/acme/shop.git"}, "pusher": {"name": "ann"}, "head_commit": {"message": "fix it"}, "commits": [{"message": "older"}], "extra": [1, {"a": null}]}"#
        guard case let .push(event) = try GitHubWebhook.parse(githubPush(Array(body.utf8))) else {
            Issue.record("not a push")
            return
        }
        #expect(event.ref == "refs/heads/main")
        #expect(event.commit == after)
        #expect(event.repositoryName == "acme/shop")
        #expect(event.repositoryURLs == ["https://github.com/acme/shop.git"])
        #expect(event.pusher == "ann")
        #expect(event.message == "fix it")
    }
}
