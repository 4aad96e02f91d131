import Foundation

/// Writes a deployment record exactly as `JSONEncoder.pushDeploy` does (pretty-printed, sorted snake_case keys,
/// slashes unescaped, millisecond ISO 8601 dates), without Codable's machinery.
///
/// The history writes one record per push under a webhook flood, and the generic encoder (key conversion,
/// containers, boxing) was a sixth of the CPU there. `RecordJSONTests` checks the output byte for byte
/// against `JSONEncoder.pushDeploy` on generated records; a field added to `Deployment` must be added here.
package enum RecordJSON {
    static func encode(_ deployment: Deployment) -> Data {
        var writer = Writer()
        writer.object(indent: 0) { fields in
            fields.string("app", deployment.app)
            fields.string("commit", deployment.commit)
            fields.date("created_at", deployment.createdAt)
            fields.string("error", deployment.error)
            fields.date("finished_at", deployment.finishedAt)
            fields.int("id", deployment.id)
            fields.string("kind", deployment.kind.rawValue)
            fields.array("phases", deployment.phases) { writer, phase, indent in
                writer.object(indent: indent) { fields in
                    fields.date("ended_at", phase.endedAt)
                    fields.string("name", phase.name.rawValue)
                    fields.date("started_at", phase.startedAt)
                }
            }
            fields.string("previous_version", deployment.previousVersion)
            fields.string("rollback_to", deployment.rollbackTo)
            fields.string("status", deployment.status.rawValue)
            fields.string("strategy", deployment.strategy)
            fields.int("superseded_by", deployment.supersededBy)
            fields.nested("trigger") { writer, indent in
                let trigger = deployment.trigger
                writer.object(indent: indent) { fields in
                    fields.string("commit", trigger.commit)
                    fields.string("delivery_id", trigger.deliveryId)
                    fields.string("message", trigger.message)
                    fields.string("pusher", trigger.pusher)
                    fields.string("ref", trigger.ref)
                    fields.string("repository", trigger.repository)
                    fields.string("source", trigger.source.rawValue)
                }
            }
            fields.string("version", deployment.version)
        }
        return Data(writer.bytes)
    }

    package struct Writer {
        package var bytes: [UInt8] = []

        package init() { bytes.reserveCapacity(1024) }

        package mutating func object(indent: Int, _ body: (inout Fields) -> Void) {
            var fields = Fields(writer: self, indent: indent + 2)
            bytes = []
            body(&fields)
            self = fields.writer
            // An empty object is written as JSONEncoder writes it: braces around a blank line.
            bytes.append(contentsOf: (fields.count == 0 ? "{\n\n" : "\n").utf8)
            pad(indent)
            bytes.append(UInt8(ascii: "}"))
        }

        mutating func pad(_ count: Int) {
            bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: count))
        }

        mutating func string(_ text: String) {
            bytes.append(UInt8(ascii: "\""))
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: "\\\"".utf8)
                case UInt8(ascii: "\\"): bytes.append(contentsOf: "\\\\".utf8)
                case 0x0A: bytes.append(contentsOf: "\\n".utf8)
                case 0x0D: bytes.append(contentsOf: "\\r".utf8)
                case 0x09: bytes.append(contentsOf: "\\t".utf8)
                case 0x08: bytes.append(contentsOf: "\\b".utf8)
                case 0x0C: bytes.append(contentsOf: "\\f".utf8)
                case 0x00 ..< 0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: "\\u00".utf8)
                    bytes.append(hex[Int(byte >> 4)])
                    bytes.append(hex[Int(byte & 0x0F)])
                default: bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }
    }

    /// The members of one object, written in the order given (which must be the sorted order).
    package struct Fields {
        var writer: Writer
        let indent: Int
        var count = 0

        private mutating func key(_ name: String) {
            if count == 0 {
                writer.bytes.append(contentsOf: "{\n".utf8)
            } else {
                writer.bytes.append(contentsOf: ",\n".utf8)
            }
            count += 1
            writer.pad(indent)
            writer.string(name)
            writer.bytes.append(contentsOf: " : ".utf8)
        }

        package mutating func string(_ name: String, _ value: String?) {
            guard let value else { return }
            key(name)
            writer.string(value)
        }

        package mutating func int(_ name: String, _ value: Int?) {
            guard let value else { return }
            key(name)
            writer.bytes.append(contentsOf: String(value).utf8)
        }

        package mutating func bool(_ name: String, _ value: Bool?) {
            guard let value else { return }
            key(name)
            writer.bytes.append(contentsOf: (value ? "true" : "false").utf8)
        }

        package mutating func ints(_ name: String, _ values: [Int]?) {
            guard let values else { return }
            array(name, values) { writer, value, _ in writer.bytes.append(contentsOf: String(value).utf8) }
        }

        mutating func date(_ name: String, _ value: Date?) {
            guard let value else { return }
            key(name)
            writer.string(ISO8601Milliseconds.format(value))
        }

        mutating func nested(_ name: String, _ body: (inout Writer, Int) -> Void) {
            key(name)
            body(&writer, indent)
        }

        mutating func array<Element>(_ name: String, _ elements: [Element], _ body: (inout Writer, Element, Int) -> Void) {
            key(name)
            if elements.isEmpty {
                writer.bytes.append(contentsOf: "[\n\n".utf8)
                writer.pad(indent)
                writer.bytes.append(UInt8(ascii: "]"))
                return
            }
            writer.bytes.append(contentsOf: "[\n".utf8)
            for (index, element) in elements.enumerated() {
                if index > 0 { writer.bytes.append(contentsOf: ",\n".utf8) }
                writer.pad(indent + 2)
                body(&writer, element, indent + 2)
            }
            writer.bytes.append(UInt8(ascii: "\n"))
            writer.pad(indent)
            writer.bytes.append(UInt8(ascii: "]"))
        }
    }
}
