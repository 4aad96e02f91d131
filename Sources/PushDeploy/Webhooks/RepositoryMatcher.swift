/// Decides whether a webhook's repository is the one an app deploys.
enum RepositoryMatcher {
    /// True when `url` (from the config) names the repository a sender described by `name` and `urls`.
    static func matches(configURL url: String, name: String?, urls: [String]) -> Bool {
        let wanted = normalize(url)
        if urls.contains(where: { normalize($0) == wanted }) { return true }
        guard let name, !name.isEmpty else { return false }
        return path(of: wanted) == name.lowercased()
    }

    /// `host/owner/name` in lower case, from https, ssh (`git@host:owner/name.git`), git:// or a local path.
    static func normalize(_ url: String) -> String {
        var text = url.lowercased()
        for scheme in ["https://", "http://", "ssh://", "git://", "file://"] where text.hasPrefix(scheme) {
            text.removeFirst(scheme.count)
        }
        if let at = text.firstIndex(of: "@"), !text[..<at].contains("/") {
            text = String(text[text.index(after: at)...])
            // scp-like syntax: host:owner/name
            if let colon = text.firstIndex(of: ":"), !text[..<colon].contains("/") {
                let rest = text[text.index(after: colon)...]
                if !(rest.first?.isNumber ?? false) { text.replaceSubrange(colon...colon, with: "/") }
            }
        }
        while text.hasSuffix("/") { text.removeLast() }
        if text.hasSuffix(".git") { text.removeLast(4) }
        return text
    }

    /// The path after the host: `owner/name`.
    private static func path(of normalized: String) -> String {
        guard let slash = normalized.firstIndex(of: "/") else { return normalized }
        return String(normalized[normalized.index(after: slash)...])
    }
}
