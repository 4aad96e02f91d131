import ArgumentParser
import Foundation
import PushDeploy

/// `pushdeploy history`: the newest deployments first.
struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List deployments, newest first.")

    @OptionGroup var options: ClientOptions

    @Option(help: "How many to show.")
    var limit = 20

    func run() async throws {
        try await runReporting {
            let client = try options.client()
            let (_, data) = try await client.send("GET", "\(options.prefix)deployments?limit=\(limit)")
            if options.json {
                print(String(decoding: data, as: UTF8.self), terminator: "")
                return
            }
            let deployments = try JSONDecoder.pushDeploy.decode([Deployment].self, from: data)
            Table.print(["ID", "KIND", "STATUS", "VERSION", "COMMIT", "TRIGGER", "STARTED", "SECONDS", "ERROR"], deployments.map { d in
                let seconds = d.finishedAt.map { String(format: "%.1f", $0.timeIntervalSince(d.createdAt)) } ?? ""
                return [String(d.id), d.kind.rawValue, d.status.rawValue, d.version ?? "", String((d.commit ?? d.trigger.commit ?? "").prefix(12)),
                        d.trigger.source.rawValue, Table.date(d.createdAt), seconds, String((d.error ?? "").prefix(60))]
            })
        }
    }
}

/// Plain aligned columns for people.
enum Table {
    static func print(_ header: [String], _ rows: [[String]]) {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        for row in all {
            let line = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
            Swift.print(line.trimmingCharacters(in: .whitespaces))
        }
        if rows.isEmpty { Swift.print("(none)") }
    }

    static func date(_ date: Date?) -> String {
        guard let date else { return "" }
        return date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon))
    }
}
