import Foundation
import PushDeploy
import Testing

/// The ssh host key check against a known_hosts file: plain, `[host]:port`, hashed, revoked and wildcard lines.
@Suite struct GitKnownHostsTests {
    static let keyA = "AAAAC3NzaC1lZDI1NTE5AAAAIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"
    static let keyB = "AAAAC3NzaC1lZDI1NTE5AAAAIAICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC"
    let a = Array(Data(base64Encoded: keyA)!)
    let b = Array(Data(base64Encoded: keyB)!)

    @Test func plainLinesTrustTheirKeyAndRejectAnother() {
        let hosts = KnownHosts(contents: """
        # comment
        github.com,140.82.121.4 ssh-ed25519 \(Self.keyA)

        not a valid line
        """)
        #expect(hosts.entries.count == 1)
        #expect(hosts.verdict(host: "github.com", port: 22, key: a) == .trusted)
        #expect(hosts.verdict(host: "GitHub.com", port: 22, key: a) == .trusted)
        #expect(hosts.verdict(host: "140.82.121.4", port: 22, key: a) == .trusted)
        #expect(hosts.verdict(host: "github.com", port: 22, key: b) == .mismatch)
        #expect(hosts.verdict(host: "gitlab.com", port: 22, key: a) == .unknownHost)
        // A plain line is for port 22 only.
        #expect(hosts.verdict(host: "github.com", port: 2222, key: a) == .unknownHost)
    }

    @Test func bracketedLinesNameAPort() {
        let hosts = KnownHosts(contents: "[git.example.com]:2222 ssh-ed25519 \(Self.keyA)\n")
        #expect(hosts.verdict(host: "git.example.com", port: 2222, key: a) == .trusted)
        #expect(hosts.verdict(host: "git.example.com", port: 22, key: a) == .unknownHost)
    }

    @Test func hashedLinesMatchThroughHMAC() {
        let hosts = KnownHosts(contents: """
        |1|AAECAwQFBgcICQoLDA0ODxAREhM=|5DHGyoq+K/vX4lJK0U2p7IteoFw= ssh-ed25519 \(Self.keyA)
        |1|AAECAwQFBgcICQoLDA0ODxAREhM=|iB8ji+G7JiWchxZqOjryGAnIiTo= ssh-ed25519 \(Self.keyB)
        """)
        #expect(hosts.verdict(host: "git.example.com", port: 22, key: a) == .trusted)
        #expect(hosts.verdict(host: "git.example.com", port: 2222, key: b) == .trusted)
        #expect(hosts.verdict(host: "git.example.com", port: 22, key: b) == .mismatch)
        #expect(hosts.verdict(host: "other.example.com", port: 22, key: a) == .unknownHost)
    }

    @Test func revokedKeysAndWildcards() {
        let hosts = KnownHosts(contents: """
        @revoked * ssh-ed25519 \(Self.keyB)
        *.example.com,!evil.example.com ssh-ed25519 \(Self.keyA)
        @cert-authority *.example.com ssh-ed25519 \(Self.keyB)
        """)
        #expect(hosts.verdict(host: "git.example.com", port: 22, key: a) == .trusted)
        #expect(hosts.verdict(host: "evil.example.com", port: 22, key: a) == .unknownHost)
        #expect(hosts.verdict(host: "git.example.com", port: 22, key: b) == .revoked)
    }

    @Test func anUnreadableFileIsAnError() {
        #expect(throws: GitError.self) { try KnownHosts.load(path: "/nonexistent/known_hosts") }
    }
}
