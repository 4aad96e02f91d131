import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Talks to a running pushdeploy server for the CLI.
public struct PushDeployClient: Sendable {
    public var baseURL: URL
    public var token: Secret?

    public init(baseURL: URL, token: Secret?) {
        self.baseURL = baseURL
        self.token = token
    }

    /// Sends a request and returns the status and body; a server error becomes a ``ClientError`` with its message.
    public func send(_ method: String, _ path: String, json: [String: String]? = nil) async throws -> (status: Int, body: Data) {
        guard let url = URL(string: path, relativeTo: baseURL) else { throw ClientError(message: "bad path \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 30
        if let token { request.setValue("Bearer \(token.text)", forHTTPHeaderField: "Authorization") }
        if let json {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        }
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw ClientError(message: "cannot reach pushdeploy at \(baseURL.absoluteString): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
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
