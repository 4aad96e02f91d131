import Foundation

/// One GET through nginx on a new connection: how the traffic switch asks nginx who answers now.
///
/// Each request opens a new connection on purpose (``HTTPProbe`` sends `Connection: close`): a kept-alive
/// one could stay with an old nginx worker that still runs the previous configuration.
struct NginxProbe: Sendable {
    /// Where a probe goes, parsed once from the URL.
    struct Target: Sendable, Equatable, CustomStringConvertible {
        var host: String
        var port: Int
        /// Path and query, `/` at least.
        var path: String

        /// Parses an `http://` URL; throws the reason it cannot be probed.
        init(url: String) throws(TrafficError) {
            guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
                throw .invalidVerifyURL(url: url, reason: "not a URL")
            }
            guard scheme == "http" else {
                throw .invalidVerifyURL(url: url, reason: "only http:// is supported (point it at nginx on loopback)")
            }
            guard let host = components.host, !host.isEmpty else { throw .invalidVerifyURL(url: url, reason: "no host") }
            self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
            port = components.port ?? 80
            let query = components.percentEncodedQuery.map { "?" + $0 } ?? ""
            path = (components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath) + query
        }

        init(host: String, port: Int, path: String) {
            self.host = host
            self.port = port
            self.path = path.hasPrefix("/") ? path : "/" + path
        }

        /// The `Host` header: the name as written, with the port unless it is 80.
        var hostHeader: String {
            let name = host.contains(":") ? "[\(host)]" : host
            return port == 80 ? name : "\(name):\(port)"
        }

        var description: String { "http://\(hostHeader)\(path)" }
    }

    /// The header the app's nginx location adds with `add_header X-Pushdeploy-Upstream $upstream_addr always;`:
    /// the backend that answered, which proves routing whatever the app's pages say.
    static let upstreamHeader = "x-pushdeploy-upstream"

    /// What one request came back with.
    enum Outcome: Sendable, Equatable {
        /// `upstream`: the `X-Pushdeploy-Upstream` header, nil when nginx sent none.
        case answered(status: Int, body: String, upstream: String? = nil)
        case failed(String)

        /// A short form for a log line or an error: `200 "demo-app 1.2"`, `connection refused`.
        var summary: String {
            switch self {
            case let .answered(status, body, upstream):
                let flat = body.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
                return "\(status) \"\(flat.count > 120 ? flat.prefix(120) + "…" : flat)\"" + (upstream.map { " from \($0)" } ?? "")
            case let .failed(reason):
                return reason
            }
        }
    }

    /// GETs `target` on a new connection, giving up after `timeout`; the body is cut at ``HTTPProbe/bodyLimit``.
    static func get(_ target: Target, timeout: Duration) async -> Outcome {
        do {
            let answer = try await HTTPProbe.send("GET", url: target.description, timeout: timeout)
            return .answered(status: answer.status, body: String(decoding: answer.body, as: UTF8.self),
                             upstream: answer.headers[upstreamHeader])
        } catch let HealthError.request(_, reason) {
            return .failed(reason)
        } catch {
            return .failed("\(error)")
        }
    }
}
