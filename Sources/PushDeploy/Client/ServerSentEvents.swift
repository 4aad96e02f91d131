/// One Server-Sent Event: its name (`message` when the stream gave none), data and id.
public struct ServerSentEvent: Sendable, Equatable {
    public var name: String
    public var data: String
    public var id: String?

    public init(name: String = "message", data: String, id: String? = nil) {
        self.name = name
        self.data = data
        self.id = id
    }
}

/// Reads the `text/event-stream` format as bytes come: fields up to a blank line make an event.
public struct ServerSentEventParser: Sendable {
    private var buffer: [UInt8] = []
    private var name: String?
    private var data: [String] = []
    private var id: String?

    public init() {}

    /// Feeds bytes; returns the events they completed.
    public mutating func feed(_ bytes: [UInt8]) -> [ServerSentEvent] {
        buffer += bytes
        var events: [ServerSentEvent] = []
        while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
            var line = Array(buffer[..<newline])
            buffer.removeSubrange(...newline)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if line.isEmpty {
                if !data.isEmpty || name != nil {
                    events.append(ServerSentEvent(name: name ?? "message", data: data.joined(separator: "\n"), id: id))
                }
                name = nil
                data = []
                continue
            }
            let text = String(decoding: line, as: UTF8.self)
            if text.hasPrefix(":") { continue }  // a comment
            let field: Substring, value: Substring
            if let colon = text.firstIndex(of: ":") {
                field = text[..<colon]
                let rest = text[text.index(after: colon)...]
                value = rest.hasPrefix(" ") ? rest.dropFirst() : rest
            } else {
                (field, value) = (text[...], "")
            }
            switch field {
            case "event": name = String(value)
            case "data": data.append(String(value))
            case "id": id = String(value)
            default: break
            }
        }
        return events
    }
}
