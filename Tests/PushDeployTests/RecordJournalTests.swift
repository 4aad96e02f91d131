import Dispatch
import Foundation
import Testing
@testable import PushDeploy

@Suite("History journal")
struct RecordJournalTests {
    private func files(_ folder: String, count: Int, from first: Int = 1) -> [(path: String, data: Data, isNew: Bool)] {
        (first ..< first + count).map { ("\(folder)/shop/\(DeploymentStore.fileName($0)).json", Data("{\"id\" : \($0)}".utf8), true) }
    }

    /// A journal over `<scratch>/deployments` with a `shop` folder, recovered and ready for commits.
    private func journal(in scratch: ScratchDirectory, retireAt: Int = 1 << 20, materializeDelay: DispatchTimeInterval,
                         maximumBacklog: Int = 256) throws -> (journal: RecordJournal, queue: DispatchQueue, folder: String) {
        let folder = scratch.path + "/deployments"
        try AtomicFile.makeDirectory(folder + "/shop")
        let queue = DispatchQueue(label: "test.journal")
        let journal = RecordJournal(directory: folder, queue: queue, retireAt: retireAt, materializeDelay: materializeDelay,
                                    maximumBacklog: maximumBacklog)
        try queue.sync { _ = try journal.recover() }
        return (journal, queue, folder)
    }

    @Test("records waiting for their files stay bounded: a commit past the backlog waits until they are written")
    func theBacklogIsBounded() throws {
        let scratch = ScratchDirectory()
        // Files would only be written in an hour, unless the backlog forces them out.
        let (journal, queue, folder) = try journal(in: scratch, materializeDelay: .seconds(3600), maximumBacklog: 8)
        try queue.sync { try journal.commit(files(folder, count: 5)) }
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/shop/000001.json"))
        #expect(journal.unmaterialized("\(folder)/shop/000001.json") == Data("{\"id\" : 1}".utf8))
        try queue.sync { try journal.commit(files(folder, count: 20, from: 6)) }
        // Past the backlog of 8: the commit returned once no more than 8 waited.
        let written = (1...25).filter { FileManager.default.fileExists(atPath: "\(folder)/shop/\(DeploymentStore.fileName($0)).json") }
        #expect(written.count >= 17)
        try journal.materializeNow()
        for id in 1...25 {
            let path = "\(folder)/shop/\(DeploymentStore.fileName(id)).json"
            #expect(FileManager.default.contents(atPath: path) == Data("{\"id\" : \(id)}".utf8))
            #expect(journal.unmaterialized(path) == nil)
        }
        #expect(journal.filesWritten == 25)
    }

    @Test("a retired journal is deleted once the files it covers are flushed; a rewritten record keeps its newest content")
    func retiredJournalsAreCheckpointed() throws {
        let scratch = ScratchDirectory()
        let (journal, queue, folder) = try journal(in: scratch, retireAt: 4096, materializeDelay: .milliseconds(1))
        for round in 0 ..< 40 {
            var batch = files(folder, count: 10, from: round * 10 + 1)
            // Each batch also rewrites record 1, which exists by now: replaced, not linked.
            batch.append(("\(folder)/shop/000001.json", Data("{\"round\" : \(round)}".utf8), false))
            try queue.sync { try journal.commit(batch) }
        }
        try journal.materializeNow()
        journal.waitForCheckpoints()
        let left = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(RecordJournal.filePrefix) }
        // Only the journal still being written to may remain.
        #expect(left.count <= 1)
        #expect(FileManager.default.contents(atPath: "\(folder)/shop/000001.json") == Data("{\"round\" : 39}".utf8))
        #expect(FileManager.default.contents(atPath: "\(folder)/shop/000400.json") == Data("{\"id\" : 400}".utf8))
        let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/shop")
        #expect(names.count == 400)
        #expect(names.allSatisfy { !$0.hasPrefix(".") })
    }
}
