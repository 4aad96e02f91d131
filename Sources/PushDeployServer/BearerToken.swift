import HTTPTypes
import Hummingbird
import PushDeploy

/// The bearer token that guards the manual API.
enum BearerToken {
    /// Throws 401 unless the request carries the configured token; compared in constant time.
    static func check(_ request: Request, against token: Secret?) throws {
        guard let token else {
            throw RequestError(.unauthorized, "no API token is configured (token_file or token_env)")
        }
        guard let header = request.headers[.authorization] else {
            throw RequestError(.unauthorized, "missing Authorization: Bearer <token>")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", token.constantTimeEquals(Array(parts[1].utf8)) else {
            throw RequestError(.unauthorized, "invalid token")
        }
    }
}
