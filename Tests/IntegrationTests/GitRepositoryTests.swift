import Foundation
import PushDeploy
import Testing

/// `GitSourceFetcher` against real repositories the tests make with the git CLI, on the local disk and
/// through a loopback smart-HTTP server.
@Suite struct GitRepositoryTests {
    let fetcher = GitSourceFetcher()

    private func fetch(_ url: String, into checkout: String, commit: String? = nil, token: String? = nil,
                       log: MemoryDeploymentLog = MemoryDeploymentLog()) async throws -> FetchedSource {
        let repository = RepositoryConfig(url: url, branch: "main", username: token == nil ? nil : "deployer",
                                          token: token.map { Secret($0) })
        return try await fetcher.fetch(FetchRequest(app: "shop", repository: repository, checkoutPath: checkout, commit: commit),
                                       log: log)
    }

    private func failure(of work: () async throws -> Void) async -> (GitError.Reason?, String) {
        do {
            try await work()
            return (nil, "no error")
        } catch let error as GitError {
            return (error.reason, error.description)
        } catch {
            return (nil, "\(error)")
        }
    }

    @Test func firstFetchClonesAndChecksOutTheBranchHead() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let origin = try scratch.makeOrigin()
        let head = try scratch.commit(in: origin, file: "src/App.java", content: "class App {}\n", message: "add app")
        let log = MemoryDeploymentLog()

        let source = try await fetch(origin, into: scratch.path("repos/shop"), log: log)

        #expect(source.commit == head)
        #expect(source.summary == "add app")
        #expect(scratch.read(scratch.path("repos/shop/src/App.java")) == "class App {}\n")
        // Detached HEAD: the file holds the id, not a branch name.
        #expect(scratch.read(scratch.path("repos/shop/.git/HEAD"))?.hasPrefix(head) == true)
        #expect(log.text.contains("fetched"))
        #expect(log.text.contains("checked out \(head.prefix(7)) (add app) in "))
        // Nothing is left over from the clone beside the checkout.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path("repos")) == ["shop"])
    }

    @Test func laterFetchBringsNewCommits() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let origin = try scratch.makeOrigin()
        let checkout = scratch.path("checkout")
        _ = try await fetch(origin, into: checkout)
        let second = try scratch.commit(in: origin, file: "README.md", content: "second\n", message: "second")
        let third = try scratch.commit(in: origin, file: "NEW.md", content: "third\n", message: "third")

        let log = MemoryDeploymentLog()
        let source = try await fetch(origin, into: checkout, commit: second, log: log)
        #expect(source.commit == second)
        #expect(scratch.read("\(checkout)/README.md") == "second\n")
        #expect(scratch.read("\(checkout)/NEW.md") == nil)
        #expect(!log.text.contains("cloning"))

        let latest = try await fetch(origin, into: checkout)
        #expect(latest.commit == third)
        #expect(scratch.read("\(checkout)/NEW.md") == "third\n")
    }

    @Test func checksOutAnOlderCommitByAbbreviatedID() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let origin = try scratch.makeOrigin()
        let first = try scratch.git(["rev-parse", "HEAD"], in: origin)
        try scratch.commit(in: origin, file: "README.md", content: "second\n", message: "second")
        let checkout = scratch.path("checkout")
        _ = try await fetch(origin, into: checkout)
        #expect(scratch.read("\(checkout)/README.md") == "second\n")

        let source = try await fetch(origin, into: checkout, commit: String(first.prefix(7)))

        #expect(source.commit == first)
        #expect(scratch.read("\(checkout)/README.md") == "first\n")
    }

    @Test func followsAForcePushThatRewroteHistory() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let origin = try scratch.makeOrigin()
        let doomed = try scratch.commit(in: origin, file: "bad.txt", content: "oops\n", message: "bad")
        let checkout = scratch.path("checkout")
        #expect(try await fetch(origin, into: checkout).commit == doomed)

        try scratch.git(["reset", "-q", "--hard", "HEAD~1"], in: origin)
        let rewritten = try scratch.commit(in: origin, file: "good.txt", content: "fine\n", message: "good")
        let source = try await fetch(origin, into: checkout)

        #expect(source.commit == rewritten)
        #expect(scratch.read("\(checkout)/bad.txt") == nil)
        #expect(scratch.read("\(checkout)/good.txt") == "fine\n")
    }

    @Test func aMissingCommitFailsWithItsID() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let origin = try scratch.makeOrigin()
        let checkout = scratch.path("checkout")

        let (reason, message) = await failure { _ = try await fetch(origin, into: checkout, commit: "abc1234") }
        #expect(reason == .commitNotFound)
        #expect(message.contains("commit abc1234 not found on origin"))

        let (notHex, _) = await failure { _ = try await fetch(origin, into: checkout, commit: "main; rm -rf /") }
        #expect(notHex == .commitNotFound)
    }

    @Test func aDirtyCheckoutIsForcedClean() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let origin = try scratch.makeOrigin()
        try scratch.commit(in: origin, file: ".gitignore", content: "build/\n", message: "ignore build")
        let head = try scratch.commit(in: origin, file: "keep.txt", content: "keep\n", message: "keep")
        let checkout = scratch.path("checkout")
        _ = try await fetch(origin, into: checkout)

        try "local edit\n".write(toFile: "\(checkout)/README.md", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: "\(checkout)/keep.txt")
        try "stray\n".write(toFile: "\(checkout)/untracked.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "\(checkout)/build", withIntermediateDirectories: true)
        try "cache\n".write(toFile: "\(checkout)/build/cache.bin", atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: "\(checkout)/.git/index.lock", contents: Data())

        let log = MemoryDeploymentLog()
        let source = try await fetch(origin, into: checkout, log: log)

        #expect(source.commit == head)
        #expect(scratch.read("\(checkout)/README.md") == "first\n")
        #expect(scratch.read("\(checkout)/keep.txt") == "keep\n")
        #expect(scratch.read("\(checkout)/untracked.txt") == nil)
        // Ignored build output stays, so Gradle keeps its caches.
        #expect(scratch.read("\(checkout)/build/cache.bin") == "cache\n")
        #expect(log.text.contains("stale index.lock"))
        #expect(try scratch.git(["status", "--porcelain"], in: checkout).isEmpty)
    }

    @Test func aMissingLocalRepositoryIsReportedClearly() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let (reason, message) = await failure {
            _ = try await fetch(scratch.path("nowhere"), into: scratch.path("checkout"))
        }
        #expect(reason == .repositoryNotFound)
        #expect(message.contains("repository not found"))
        #expect(!FileManager.default.fileExists(atPath: scratch.path("checkout")))
    }

    @Test func aMovedRemoteIsFollowed() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let origin = try scratch.makeOrigin()
        let checkout = scratch.path("checkout")
        _ = try await fetch(origin, into: checkout)
        let moved = scratch.path("moved")
        try scratch.git(["clone", "-q", origin, moved], in: scratch.root)
        let head = try scratch.commit(in: moved, file: "moved.txt", content: "moved\n", message: "on the new remote")

        let log = MemoryDeploymentLog()
        let source = try await fetch(moved, into: checkout, log: log)

        #expect(source.commit == head)
        #expect(log.text.contains("remote origin moved from \(origin) to \(moved)"))
        #expect(try scratch.git(["remote", "get-url", "origin"], in: checkout) == moved)
    }

    @Test func aBrokenCheckoutIsReplacedByAFreshClone() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let origin = try scratch.makeOrigin()
        let checkout = scratch.path("repos/shop")
        _ = try await fetch(origin, into: checkout)
        try FileManager.default.removeItem(atPath: "\(checkout)/.git/HEAD")
        try FileManager.default.removeItem(atPath: "\(checkout)/.git/objects")

        let log = MemoryDeploymentLog()
        let source = try await fetch(origin, into: checkout, log: log)

        #expect(source.commit == (try scratch.git(["rev-parse", "HEAD"], in: origin)))
        #expect(log.text.contains("unusable"))
        #expect(scratch.read("\(checkout)/README.md") == "first\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path("repos")) == ["shop"])
    }

    @Test func submodulesAreCheckedOut() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let library = try scratch.makeOrigin("library")
        let origin = try scratch.makeOrigin()
        try scratch.git(["-c", "protocol.file.allow=always", "submodule", "add", "-q", library, "lib"], in: origin)
        try scratch.git(["commit", "-q", "-m", "add lib"], in: origin)
        let checkout = scratch.path("checkout")

        let log = MemoryDeploymentLog()
        _ = try await fetch(origin, into: checkout, log: log)

        #expect(scratch.read("\(checkout)/lib/README.md") == "first\n")
        #expect(log.text.contains("updated 1 submodule"))
    }

    @Test func anHTTPSTokenIsSentWithBasicAuth() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let origin = try scratch.makeOrigin()
        try scratch.git(["clone", "-q", "--bare", origin, scratch.path("served/shop.git")], in: scratch.root)
        let server = try GitHTTPServer(root: scratch.path("served"), user: "deployer", token: "s3cret", scratch: scratch)
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/shop.git"

        let log = MemoryDeploymentLog()
        let source = try await fetch(url, into: scratch.path("checkout"), token: "s3cret", log: log)

        #expect(source.commit == (try scratch.git(["rev-parse", "HEAD"], in: origin)))
        #expect(scratch.read(scratch.path("checkout/README.md")) == "first\n")
        #expect(!log.text.contains("s3cret"))
    }

    @Test func aWrongTokenFailsFast() async throws {
        let scratch = try GitScratch()
        defer { scratch.remove() }
        let origin = try scratch.makeOrigin()
        try scratch.git(["clone", "-q", "--bare", origin, scratch.path("served/shop.git")], in: scratch.root)
        let server = try GitHTTPServer(root: scratch.path("served"), user: "deployer", token: "s3cret", scratch: scratch)
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/shop.git"

        let started = ContinuousClock.now
        let (reason, message) = await failure { _ = try await fetch(url, into: scratch.path("checkout"), token: "wrong") }

        #expect(reason == .authenticationFailed)
        #expect(message.contains("authentication failed for \(url)"), "\(message)")
        #expect(!message.contains("wrong"))
        #expect(ContinuousClock.now - started < .seconds(10))
        // The first request comes without credentials, then one per attempt.
        #expect(server.rejections <= 1 + fetcher.maxAuthAttempts, "\(server.rejections) requests refused")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("checkout")))

        let (noToken, why) = await failure { _ = try await fetch(url, into: scratch.path("checkout")) }
        #expect(noToken == .authenticationFailed)
        #expect(why.contains("no token"))
    }
}
