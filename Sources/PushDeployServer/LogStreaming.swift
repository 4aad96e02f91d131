import Foundation
import Hummingbird
import NIOCore
import PushDeploy

/// A deployment's log as text; with `follow`, streamed until the deployment finishes.
enum LogStreaming {
    static func response(store: DeploymentStore, deployment: Deployment, follow: Bool) -> Response {
        let path = store.logPath(app: deployment.app, id: deployment.id)
        let headers: HTTPFields = [.contentType: "text/plain; charset=utf-8"]
        guard follow, !deployment.status.isFinished else {
            // A deployment that never ran (superseded or cancelled while it waited) has no log file: its record says why.
            let data = FileManager.default.contents(atPath: path)
                ?? Data((deployment.status.isFinished ? "\(deployment.status.rawValue): \(deployment.error ?? "no log")\n" : "").utf8)
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        }
        let body = ResponseBody { writer in
            var offset: UInt64 = 0
            while true {
                let finished = try await store.deployment(app: deployment.app, id: deployment.id)?.status.isFinished ?? true
                let chunk = read(path, from: offset)
                if !chunk.isEmpty {
                    offset += UInt64(chunk.count)
                    try await writer.write(ByteBuffer(bytes: chunk))
                }
                if finished { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    private static func read(_ path: String, from offset: UInt64) -> Data {
        guard let handle = FileHandle(forReadingAtPath: path) else { return Data() }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: offset)
            return try handle.readToEnd() ?? Data()
        } catch {
            return Data()
        }
    }
}
