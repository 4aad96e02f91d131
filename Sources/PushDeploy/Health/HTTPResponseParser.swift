import Foundation

/// Reads an HTTP/1.1 answer: status line, headers, and a body framed by `Content-Length`, chunks, or the end of the connection.
enum HTTPResponseParser {
    /// The answer, or nil while more bytes are needed; `closed` says the peer has closed the connection.
    /// At most `limit` bytes of the body are kept.
    static func parse(_ bytes: [UInt8], closed: Bool, limit: Int = HTTPProbe.bodyLimit,
                      _ failure: (String) -> HealthError) throws(HealthError) -> ProbeAnswer? {
        var start = 0
        while true {
            guard let headerEnd = find([13, 10, 13, 10], in: bytes, from: start) else {
                if bytes.count - start > 64 * 1024 { throw failure("malformed answer: headers longer than 64 KiB") }
                return nil
            }
            let head = String(decoding: bytes[start..<headerEnd], as: UTF8.self)
            let lines = head.components(separatedBy: "\r\n")
            let statusParts = lines[0].split(separator: " ", maxSplits: 2)
            guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/"), let status = Int(statusParts[1]) else {
                throw failure("malformed answer: \(lines[0].prefix(100))")
            }
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let bodyStart = headerEnd + 4
            // An interim answer (100 Continue) is followed by the real one.
            if (100..<200).contains(status), status != 101 {
                start = bodyStart
                continue
            }
            if status == 204 || status == 304 { return ProbeAnswer(status: status, body: "") }
            let body = Array(bytes[bodyStart...])
            if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
                guard let decoded = try dechunk(body, closed: closed, limit: limit, failure) else { return nil }
                return ProbeAnswer(status: status, body: text(decoded))
            }
            if let lengthText = headers["content-length"] {
                guard let length = Int(lengthText), length >= 0 else { throw failure("malformed answer: Content-Length \(lengthText)") }
                let wanted = min(length, limit)
                if body.count >= wanted { return ProbeAnswer(status: status, body: text(body.prefix(wanted))) }
                if closed { throw failure("connection closed after \(body.count) of \(length) body bytes") }
                return nil
            }
            if closed || body.count >= limit { return ProbeAnswer(status: status, body: text(body.prefix(limit))) }
            return nil
        }
    }

    /// Decodes a chunked body; nil while the last chunk has not arrived.
    private static func dechunk(_ bytes: [UInt8], closed: Bool, limit: Int,
                                _ failure: (String) -> HealthError) throws(HealthError) -> [UInt8]? {
        var decoded: [UInt8] = []
        var index = 0
        while true {
            guard let lineEnd = find([13, 10], in: bytes, from: index) else { return nil }
            let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw failure("malformed chunked answer: chunk size \"\(sizeText.prefix(20))\"")
            }
            if size == 0 { return decoded }
            let dataStart = lineEnd + 2
            guard bytes.count >= dataStart + size + 2 else { return nil }
            decoded += bytes[dataStart..<(dataStart + size)]
            if decoded.count >= limit { return decoded }
            index = dataStart + size + 2
        }
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
        for index in start...(bytes.count - needle.count) where bytes[index] == needle[0] {
            if bytes[index..<(index + needle.count)].elementsEqual(needle) { return index }
        }
        return nil
    }

    private static func text<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(decoding: bytes, as: UTF8.self)
    }
}
