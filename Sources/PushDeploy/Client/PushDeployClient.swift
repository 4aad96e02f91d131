import Foundation

/// Talks to a running pushdeploy server for the CLI, over `http://` (what `serve` listens on) or `https://` (a TLS proxy in front).
///
/// It goes through ``HTTPProbe``, the one HTTP client of the process, with a larger cap on the answer.
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
        guard let url = URL(string: path, relativeTo: baseURL)?.absoluteURL else {
            throw ClientError(message: "bad path \(path)")
        }
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host?.isEmpty == false else {
            throw ClientError(message: "\(baseURL.absoluteString) is not an http:// or https:// URL (use pushdeploy's listen address)")
        }
        var headers: [String: String] = [:]
        if let token { headers["Authorization"] = "Bearer \(token.text)" }
        var body: [UInt8]?
        if let json {
            headers["Content-Type"] = "application/json"
            body = Array(try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]))
        }
        let answer: HTTPProbe.Answer
        do {
            answer = try await HTTPProbe.send(method, url: url.absoluteString, timeout: .seconds(30), headers: headers, body: body,
                                              bodyLimit: Self.answerLimit)
        } catch let error as HealthError {
            guard case let .request(_, reason) = error else { throw error }
            throw ClientError(message: "cannot reach pushdeploy at \(baseURL.absoluteString): \(reason)")
        }
        guard !answer.cut else {
            throw ClientError(message: "\(method) \(path): the answer is larger than \(Self.answerLimit >> 20) MiB, more than the CLI reads",
                              status: answer.status)
        }
        let (status, data) = (answer.status, Data(answer.body))
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

    /// Follows a deployment's log as Server-Sent Events (`line`, `phase`, `end`), resuming after `lastEventID`.
    /// The stream ends after `end`, or when the connection drops (the caller may reconnect with the last id).
    public func events(_ path: String, lastEventID: String? = nil) async throws -> AsyncThrowingStream<ServerSentEvent, any Error> {
        guard let url = URL(string: path, relativeTo: baseURL)?.absoluteURL else { throw ClientError(message: "bad path \(path)") }
        var headers = ["Accept": "text/event-stream"]
        if let token { headers["Authorization"] = "Bearer \(token.text)" }
        if let lastEventID { headers["Last-Event-ID"] = lastEventID }
        let (status, body): (Int, AsyncThrowingStream<[UInt8], any Error>)
        do {
            (status, body) = try await HTTPProbe.stream(url: url.absoluteString, headers: headers, timeout: .seconds(30))
        } catch let error as HealthError {
            guard case let .request(_, reason) = error else { throw error }
            throw ClientError(message: "cannot reach pushdeploy at \(baseURL.absoluteString): \(reason)")
        }
        guard (200..<300).contains(status) else { throw ClientError(message: "\(status): cannot follow \(path)", status: status) }
        return AsyncThrowingStream { continuation in
            let reader = Task {
                var parser = ServerSentEventParser()
                do {
                    for try await bytes in body {
                        for event in parser.feed(bytes) {
                            continuation.yield(event)
                            if event.name == "end" { continuation.finish(); return }
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
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
