import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PushDeploy

/// JSON answers, all written with the same encoder as the history files.
enum JSONResponse {
    static func make<Value: Encodable>(_ status: HTTPResponse.Status, _ value: Value) -> Response {
        let data = (try? JSONEncoder.pushDeploy.encode(value)) ?? Data("{}".utf8)
        var buffer = ByteBuffer(bytes: data)
        buffer.writeString("\n")
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                        body: ResponseBody(byteBuffer: buffer))
    }

    /// The answer to an accepted deploy or rollback.
    static func accepted(_ status: HTTPResponse.Status, _ body: AcceptedBody) -> Response {
        make(status, body)
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, extra: [String: [String]] = [:]) -> Response {
        make(status, ErrorBody(error: message, available: extra["available"]))
    }

    static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

struct ErrorBody: Encodable {
    var error: String
    var available: [String]?
}

/// What a deploy or rollback request answers.
struct AcceptedBody: Encodable {
    var deployment: Int
    var app: String
    var statusUrl: String
    var duplicate: Bool?
    var deployments: [Int]?
}

struct IgnoredBody: Encodable {
    var ignored: String
}
