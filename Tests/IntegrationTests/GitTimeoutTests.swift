import Foundation
import PushDeploy
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A remote that accepts connections and never answers: libgit2 1.5 has no timeout of its own.
@Suite("A silent remote")
struct GitTimeoutTests {
    @Test("repository.timeout ends the fetch, and libgit2 lets go of the connection")
    func aSilentRemoteTimesOut() async throws {
        let server = try SilentServer()
        defer { server.stop() }
        let scratch = try GitScratch()
        var repository = RepositoryConfig(url: "http://127.0.0.1:\(server.port)/shop.git", branch: "main")
        repository.timeout = .seconds(2)
        let started = ContinuousClock.now
        let reason: GitError.Reason?
        do {
            _ = try await GitSourceFetcher().fetch(FetchRequest(app: "shop", repository: repository, checkoutPath: scratch.path("checkout")),
                                                   log: MemoryDeploymentLog())
            reason = nil
        } catch let error as GitError {
            reason = error.reason
            #expect(error.description.contains("repository.timeout"), "\(error)")
        }
        let took = ContinuousClock.now - started
        #expect(reason == .timedOut)
        #expect(took < .seconds(4), "the fetch took \(took)")
        // The blocked recv was interrupted: libgit2 closed its connection soon after.
        #expect(await server.waitForClose(within: .seconds(5)), "libgit2 still holds the connection to the silent remote")
    }

    @Test("cancelling a fetch that waits on a silent remote ends it within a second")
    func cancellingASilentFetchIsPrompt() async throws {
        let server = try SilentServer()
        defer { server.stop() }
        let scratch = try GitScratch()
        let repository = RepositoryConfig(url: "http://127.0.0.1:\(server.port)/shop.git", branch: "main")
        let fetch = Task {
            try await GitSourceFetcher().fetch(FetchRequest(app: "shop", repository: repository, checkoutPath: scratch.path("checkout")),
                                               log: MemoryDeploymentLog())
        }
        #expect(await server.waitForConnection(within: .seconds(5)))
        let started = ContinuousClock.now
        fetch.cancel()
        await #expect(throws: CancellationError.self) { _ = try await fetch.value }
        #expect(ContinuousClock.now - started < .seconds(1))
        #expect(await server.waitForClose(within: .seconds(5)))
    }
}

/// Listens on a free loopback port, accepts, reads whatever comes, answers nothing; notes when the client hangs up.
final class SilentServer: Sendable {
    let port: Int
    private let listener: Int32
    private let events = Mutex<(connected: Bool, closed: Bool, stopped: Bool)>((false, false, false))

    init() throws {
        let (listener, port) = try Integration.listeningSocket()
        self.listener = listener
        self.port = port
        Thread.detachNewThread { [self] in
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            events.withLock { $0.connected = true }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while read(connection, &buffer, buffer.count) > 0 {}
            events.withLock { $0.closed = true }
            close(connection)
        }
    }

    func waitForConnection(within limit: Duration) async -> Bool {
        await wait(within: limit) { $0.connected }
    }

    func waitForClose(within limit: Duration) async -> Bool {
        await wait(within: limit) { $0.closed }
    }

    private func wait(within limit: Duration, until: (((connected: Bool, closed: Bool, stopped: Bool)) -> Bool)) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if events.withLock({ until($0) }) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}
