import HTTPTypes
import Hummingbird
import NIOCore

/// Reads request bodies up to the configured limit.
enum BodyReader {
    /// The whole body as bytes; a body over `limit` is refused with 413 before it is read when its length is announced.
    static func collect(_ request: Request, limit: Int) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw RequestError(.contentTooLarge, "request body of \(length) bytes is over the limit of \(limit) bytes")
        }
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw RequestError(.contentTooLarge, "request body is over the limit of \(limit) bytes")
        }
    }
}
