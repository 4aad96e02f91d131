import Crypto
import Foundation

/// The ssh host keys an OpenSSH `known_hosts` file trusts.
public struct KnownHosts: Sendable, Equatable {
    /// One key line: the hosts it names, the key type and the key.
    public struct Entry: Sendable, Equatable {
        /// `@revoked` and `@cert-authority` lines; plain lines have none.
        public enum Marker: Sendable, Equatable { case none, revoked, certAuthority }

        /// How a line names its hosts: a comma list of patterns, or one `|1|salt|hash` entry.
        public enum Hosts: Sendable, Equatable {
            case patterns([String])
            case hashed(salt: [UInt8], hash: [UInt8])
        }

        public var marker: Marker
        public var hosts: Hosts
        /// The key type as written, such as `ssh-ed25519`.
        public var keyType: String
        /// The key blob in ssh wire format (the base64 field, decoded).
        public var key: [UInt8]

        /// True when the line names `name` (`host`, or `[host]:port` for a port other than 22).
        public func names(_ name: String) -> Bool {
            switch hosts {
            case let .hashed(salt, hash):
                let code = HMAC<Insecure.SHA1>.authenticationCode(for: Array(name.utf8), using: SymmetricKey(data: salt))
                return ConstantTime.equals(Array(code), hash)
            case let .patterns(patterns):
                var matched = false
                for pattern in patterns {
                    if pattern.hasPrefix("!") {
                        if KnownHosts.glob(String(pattern.dropFirst()).lowercased(), name.lowercased()) { return false }
                    } else if KnownHosts.glob(pattern.lowercased(), name.lowercased()) {
                        matched = true
                    }
                }
                return matched
            }
        }
    }

    /// What known_hosts says about a key a server presented.
    public enum Verdict: Sendable, Equatable {
        case trusted
        /// No line names the host with a key of this type.
        case unknownHost
        /// The host is known with a different key of this type: possibly an attack.
        case mismatch
        /// The key is marked `@revoked`.
        case revoked
    }

    /// The key lines, in file order.
    public var entries: [Entry]

    /// Known hosts from lines already parsed.
    public init(entries: [Entry]) { self.entries = entries }

    /// Parses the text of a known_hosts file; lines it cannot read are skipped, as OpenSSH does.
    public init(contents: String) {
        entries = contents.split(whereSeparator: \.isNewline).compactMap { Self.parse(line: String($0)) }
    }

    /// Reads and parses a known_hosts file.
    public static func load(path: String) throws(GitError) -> KnownHosts {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GitError(.hostKeyRejected, "cannot read known_hosts file \(path)")
        }
        return KnownHosts(contents: String(decoding: data, as: UTF8.self))
    }

    /// The name known_hosts uses for a host and port: `host` on port 22, `[host]:port` otherwise.
    public static func hostName(_ host: String, port: Int) -> String {
        port == 22 ? host : "[\(host)]:\(port)"
    }

    /// Checks the key `host:port` presented against every line that names it.
    public func verdict(host: String, port: Int, key: [UInt8]) -> Verdict {
        let name = Self.hostName(host, port: port)
        let keyType = Self.keyType(ofBlob: key)
        let lines = entries.filter { $0.marker != .certAuthority && $0.names(name) }
        if lines.contains(where: { $0.marker == .revoked && $0.key == key }) { return .revoked }
        if lines.contains(where: { $0.marker == .none && $0.key == key }) { return .trusted }
        if lines.contains(where: { $0.marker == .none && $0.keyType == keyType }) { return .mismatch }
        return .unknownHost
    }

    /// The type string at the start of an ssh wire-format key blob (`ssh-rsa`, `ssh-ed25519`, ...).
    static func keyType(ofBlob blob: [UInt8]) -> String? {
        guard blob.count >= 4 else { return nil }
        let length = blob[0 ..< 4].reduce(0) { $0 << 8 | Int($1) }
        guard length > 0, length <= blob.count - 4 else { return nil }
        return String(decoding: blob[4 ..< 4 + length], as: UTF8.self)
    }

    private static func parse(line: String) -> Entry? {
        var fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let first = fields.first, !first.hasPrefix("#") else { return nil }
        var marker = Entry.Marker.none
        if first == "@revoked" { marker = .revoked } else if first == "@cert-authority" { marker = .certAuthority }
        if marker != .none { fields.removeFirst() }
        guard fields.count >= 3, let key = Data(base64Encoded: fields[2]) else { return nil }
        let hosts: Entry.Hosts
        if fields[0].hasPrefix("|1|") {
            let parts = fields[0].dropFirst(3).split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count == 2, let salt = Data(base64Encoded: String(parts[0])),
                  let hash = Data(base64Encoded: String(parts[1])) else { return nil }
            hosts = .hashed(salt: Array(salt), hash: Array(hash))
        } else {
            hosts = .patterns(fields[0].split(separator: ",").map(String.init))
        }
        return Entry(marker: marker, hosts: hosts, keyType: fields[1], key: Array(key))
    }

    /// OpenSSH host pattern matching: `*` any run of characters, `?` exactly one.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                pi += 1
                ti += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
