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
}
