import Foundation

/// Talks to a running pushdeploy server for the CLI, over plain HTTP (what `serve` listens on).
///
/// It uses the same small socket client as the health checks rather than URLSession: linking URLSession brings
/// libcurl and its TLS stack into every pushdeploy process, the server's included (3.7 MB of resident memory).
public struct PushDeployClient: Sendable {
    public var baseURL: URL
    public var token: Secret?
    /// The most of an answer that is read (a long build log).
    static let answerLimit = 64 << 20

    public init(baseURL: URL, token: Secret?) {
        self.baseURL = baseURL
        self.token = token
    }

    /// Sends a request and returns the status and body; a server error becomes a ``ClientError`` with its message.
    public func send(_ method: String, _ path: String, json: [String: String]? = nil) async throws -> (status: Int, body: Data) {
        guard let url = URL(string: path, relativeTo: baseURL)?.absoluteURL,
              let parts = URLComponents(url: url, resolvingAgainstBaseURL: false) else {
            throw ClientError(message: "bad path \(path)")
        }
        guard parts.scheme?.lowercased() == "http", let host = parts.host, !host.isEmpty else {
            throw ClientError(message: "\(baseURL.absoluteString) is not an http:// URL (pushdeploy serves plain HTTP; "
                + "use its listen address, or curl for a TLS proxy in front of it)")
        }
        var headers: [String: String] = [:]
        if let token { headers["Authorization"] = "Bearer \(token.text)" }
        var body: [UInt8]?
        if let json {
            headers["Content-Type"] = "application/json"
            body = Array(try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]))
        }
        let target = (parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath)
            + (parts.percentEncodedQuery.map { "?" + $0 } ?? "")
        let status: Int
        let data: Data
        do {
            let answer = try await HTTPProbe.send(method, host: host, port: parts.port ?? 80, path: target, timeout: .seconds(30),
                                                  headers: headers, body: body, bodyLimit: Self.answerLimit)
            (status, data) = (answer.status, Data(answer.body.utf8))
        } catch let error as HealthError {
            guard case let .request(_, reason) = error else { throw error }
            throw ClientError(message: "cannot reach pushdeploy at \(baseURL.absoluteString): \(reason)")
        }
        guard (200..<300).contains(status) else {
            let reason = (try? JSONDecoder().decode(ServerError.self, from: data))
            var message = reason?.error ?? String(decoding: data.prefix(300), as: UTF8.self)
            if let available = reason?.available, !available.isEmpty {
                message += " (available: \(available.joined(separator: ", ")))"
            }
            throw ClientError(message: "\(status): \(message.trimmingCharacters(in: .whitespacesAndNewlines))", status: status)
        }
        return (status, data)
    }

    /// Sends a request and decodes the JSON answer.
    public func get<Value: Decodable>(_ path: String, as type: Value.Type) async throws -> Value {
        let (_, data) = try await send("GET", path)
        do {
            return try JSONDecoder.pushDeploy.decode(type, from: data)
        } catch {
            throw ClientError(message: "unexpected answer from \(path): \(error)")
        }
    }

    private struct ServerError: Decodable {
        var error: String
        var available: [String]?
    }
}

/// A failed CLI request, with a one-line reason.
public struct ClientError: Error, CustomStringConvertible {
    public var message: String
    public var status: Int?

    public init(message: String, status: Int? = nil) {
        self.message = message
        self.status = status
    }

    public var description: String { message }
}
