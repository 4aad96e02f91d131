import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Testing
@testable import PushDeploy
@testable import PushDeployServer

@Suite("JSON answers")
struct JSONResponseTests {
    @Test(arguments: [
        AcceptedBody(deployment: 7, app: "shop", statusUrl: "/apps/shop/deployments/7"),
        AcceptedBody(deployment: 12, app: "shop \"quoted\"/x", statusUrl: "/apps/shop/deployments/12", duplicate: true),
        AcceptedBody(deployment: 3, app: "a", statusUrl: "/apps/a/deployments/3", deployments: [3, 4, 5]),
        AcceptedBody(deployment: 1, app: "b", statusUrl: "/b", duplicate: false, deployments: []),
    ])
    func theDirectAnswerIsWhatTheEncoderWrites(body: AcceptedBody) async throws {
        let direct = try await bytes(JSONResponse.accepted(.accepted, body))
        let encoded = try await bytes(JSONResponse.make(.accepted, body))
        #expect(direct == encoded, "\(String(decoding: direct, as: UTF8.self))")
    }

    private func bytes(_ response: Response) async throws -> [UInt8] {
        final class Collector: ResponseBodyWriter {
            var bytes: [UInt8] = []
            func write(_ buffer: ByteBuffer) async throws { bytes += buffer.readableBytesView }
            func finish(_ trailingHeaders: HTTPFields?) async throws {}
        }
        let collector = Collector()
        try await response.body.write(collector)
        return collector.bytes
    }
}
