import Foundation
import Hummingbird
import NIOCore
import PushDeploy
import ServiceLifecycle

/// A deployment's log as text; with `follow`, streamed until the deployment finishes; or as Server-Sent Events.
enum LogStreaming {
    /// `text/event-stream`: each log line an event `line` (its id the log offset after it, so a reconnect with
    /// `Last-Event-ID` resumes there), each phase change an event `phase`, and a last event `end` with the final
    /// status. A deployment that already ended gets its log and `end` at once.
    static func events(history: any DeploymentHistory, deployment: Deployment, lastEventID: String?) -> Response {
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        let app = deployment.app, id = deployment.id
        let body = ResponseBody { writer in
            var offset = lastEventID.flatMap(Int.init).map { max(0, $0) } ?? 0
            var pending = Data()
            var phase: DeploymentStatus?
            while true {
                let record = try await history.deployment(app: app, id: id) ?? deployment
                if record.status != phase, !record.status.isFinished {
                    phase = record.status
                    try await writer.write(ByteBuffer(string: Self.event("phase", data: Self.json(["phase": record.status.rawValue]))))
                }
                while true {
                    let chunk = await history.readLog(app: app, id: id, from: offset)
                    if chunk.cut {
                        pending = Data()
                        try await writer.write(ByteBuffer(string: Self.event("cut", data: "the start of the log was cut")))
                    }
                    if chunk.data.isEmpty { break }
                    pending += chunk.data
                    offset = chunk.nextOffset
                    // Whole lines only; the id of each is where the next one starts in the log.
                    var end = offset - pending.count
                    var text = ""
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = pending[pending.startIndex..<newline]
                        end += line.count + 1
                        text += Self.event("line", data: String(decoding: line, as: UTF8.self), id: String(end))
                        pending = Data(pending[(newline + 1)...])
                    }
                    if !text.isEmpty { try await writer.write(ByteBuffer(string: text)) }
                }
                if record.status.isFinished {
                    if !pending.isEmpty {
                        try await writer.write(ByteBuffer(string: Self.event("line", data: String(decoding: pending, as: UTF8.self), id: String(offset))))
                    }
                    var end = ["status": record.status.rawValue]
                    if let error = record.error { end["error"] = error }
                    try await writer.write(ByteBuffer(string: Self.event("end", data: Self.json(end))))
                    break
                }
                if Task.isShuttingDownGracefully {
                    try await writer.write(ByteBuffer(string: Self.event("end", data: Self.json(["status": "server_stopping"]))))
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// One event; a `data` of several lines becomes several `data:` fields, as the format says.
    static func event(_ name: String, data: String, id: String? = nil) -> String {
        var text = "event: \(name)\n"
        if let id { text += "id: \(id)\n" }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
            text += "data: \(line.replacingOccurrences(of: "\r", with: ""))\n"
        }
        return text + "\n"
    }

    private static func json(_ fields: [String: String]) -> String {
        (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func response(history: any DeploymentHistory, deployment: Deployment, follow: Bool) async -> Response {
        let headers: HTTPFields = [.contentType: "text/plain; charset=utf-8"]
        guard follow, !deployment.status.isFinished else {
            var text = Data()
            var offset = 0
            while true {
                let chunk = await history.readLog(app: deployment.app, id: deployment.id, from: offset)
                if chunk.data.isEmpty { break }
                if chunk.cut { text = Data() }
                text += chunk.data
                offset = chunk.nextOffset
            }
            // A deployment that never ran (superseded or cancelled while it waited) has no log: its record says why.
            if text.isEmpty, deployment.status.isFinished {
                text = Data("\(deployment.status.rawValue): \(deployment.error ?? "no log")\n".utf8)
            }
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
        }
        let body = ResponseBody { writer in
            var offset = 0
            while true {
                let finished = try await history.deployment(app: deployment.app, id: deployment.id)?.status.isFinished ?? true
                while true {
                    let chunk = await history.readLog(app: deployment.app, id: deployment.id, from: offset)
                    if chunk.cut { try await writer.write(ByteBuffer(string: "\n[… the log was cut; it goes on from its new start …]\n")) }
                    offset = chunk.nextOffset
                    if chunk.data.isEmpty { break }
                    try await writer.write(ByteBuffer(bytes: chunk.data))
                }
                if finished { break }
                // A stopping server must not wait for the deployment: it is recorded interrupted, the follower told.
                if Task.isShuttingDownGracefully {
                    try await writer.write(ByteBuffer(string: "[pushdeploy is shutting down; this deployment is stopped and recorded interrupted]\n"))
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}
