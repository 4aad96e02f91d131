import HTTPTypes
import Hummingbird
import PushDeploy

/// Chooses the HTTP answer for an error from the core: a client's mistake is never a 5xx.
enum ErrorMapping {
    static func response(for error: any Error) -> Response {
        switch error {
        case let error as WebhookError:
            switch error {
            case let .unauthorized(reason): return JSONResponse.error(.unauthorized, reason)
            case let .malformed(reason): return JSONResponse.error(.badRequest, reason)
            }
        case let error as DeployError:
            switch error {
            case .unknownApp: return JSONResponse.error(.notFound, error.description)
            case let .noRollbackTarget(_, _, available):
                return JSONResponse.error(.conflict, error.description, extra: ["available": available])
            case .notAvailable: return JSONResponse.error(.notImplemented, error.description)
            case let .invalidRollbackTarget(_, _, _, available):
                return JSONResponse.error(.badRequest, error.description, extra: ["available": available])
            }
        case let error as RequestError:
            return JSONResponse.error(error.status, error.message)
        case let error as QueueError:
            return JSONResponse.error(.serviceUnavailable, error.description)
        case let error as HistoryError:
            if case .notFound = error { return JSONResponse.error(.notFound, error.description) }
            return JSONResponse.error(.internalServerError, error.description)
        case let error as HTTPError where error.status == .contentTooLarge:
            return JSONResponse.error(.contentTooLarge, "request body is larger than the limit")
        case let error as any HTTPResponseError where (400..<500).contains(error.status.code):
            return JSONResponse.error(error.status, "bad request")
        default:
            return JSONResponse.error(.internalServerError, "internal error: \(error)")
        }
    }
}

/// A request the server refuses before it reaches the core.
struct RequestError: Error {
    var status: HTTPResponse.Status
    var message: String

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
}
