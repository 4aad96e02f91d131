import Testing
@testable import PushDeploy

@Suite("Remote URLs in logs")
struct GitRemoteURLTests {
    @Test("credentials in an https URL never reach a log", arguments: [
        ("https://deployer:s3cret@git.example.com/acme/shop.git", "https://deployer:***@git.example.com/acme/shop.git"),
        ("https://ghp_t0ken@github.com/acme/shop.git", "https://***@github.com/acme/shop.git"),
        ("https://github.com/acme/shop.git", "https://github.com/acme/shop.git"),
        ("git@github.com:acme/shop.git", "git@github.com:acme/shop.git"),
    ])
    func redacted(url: String, shown: String) {
        #expect(GitRemoteURL(url).redacted == shown)
    }
}
