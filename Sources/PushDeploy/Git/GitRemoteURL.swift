import Foundation

/// A remote's URL taken apart as far as pushdeploy needs: how it is reached, the host and port for
/// the host key check, and a form safe to print.
struct GitRemoteURL: Sendable, Equatable {
    enum Transport: Sendable, Equatable { case local, http, ssh, other }

    var text: String
    var transport: Transport
    var host: String?
    var port: Int?
    /// For a local remote, the folder it names.
    var localPath: String?

    init(_ text: String) {
        self.text = text
        if text.hasPrefix("file://") {
            transport = .local
            localPath = String(text.dropFirst("file://".count))
            return
        }
        if let schemeEnd = text.range(of: "://") {
            let scheme = text[..<schemeEnd.lowerBound].lowercased()
            let components = URLComponents(string: text)
            host = components?.host
            port = components?.port
            switch scheme {
            case "http", "https":
                transport = .http
                port = port ?? (scheme == "https" ? 443 : 80)
            case "ssh", "git+ssh", "ssh+git":
                transport = .ssh
                port = port ?? 22
            default:
                transport = .other
            }
            return
        }
        // scp-like `user@host:path`: a colon before the first slash.
        if let colon = text.firstIndex(of: ":"), !text[..<colon].contains("/"), text[..<colon].count > 1 {
            transport = .ssh
            let authority = text[..<colon]
            host = String(authority.split(separator: "@").last ?? authority)
            port = 22
            return
        }
        transport = .local
        localPath = text
    }

    /// The URL with any password or token in it replaced, for logs and errors.
    var redacted: String {
        guard transport == .http, var components = URLComponents(string: text), components.user != nil || components.password != nil else {
            return text
        }
        // `https://TOKEN@host/...` carries the token as the user name: hide both parts.
        if components.password != nil {
            components.password = "***"
        } else {
            components.user = "***"
        }
        return components.string ?? text
    }
}
