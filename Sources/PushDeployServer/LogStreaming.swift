import Foundation
import Hummingbird
import NIOCore
import PushDeploy
import ServiceLifecycle

/// A deployment's log as text; with `follow`, streamed until the deployment finishes.
enum LogStreaming {
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
