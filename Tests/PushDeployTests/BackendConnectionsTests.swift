import Testing
@testable import PushDeploy

@Suite("Connections to a backend port")
struct BackendConnectionsTests {
    /// Rows as /proc/net/tcp prints them: nginx (local 127.0.0.1:40000) connected to 8082 (0x1F92), one closing, one to 8081.
    private let table = """
          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 0100007F:1F92 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
           1: 0100007F:9C40 0100007F:1F92 01 00000000:00000000 00:00000000 00000000    33        0 2 1 0000000000000000 20 4 30 10 -1
           2: 0100007F:9C41 0100007F:1F92 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
           3: 0100007F:9C42 0100007F:1F91 01 00000000:00000000 00:00000000 00000000    33        0 3 1 0000000000000000 20 4 30 10 -1
           4: 0100007F:1F92 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4 1 0000000000000000 20 4 30 10 -1
        """

    @Test func onlyEstablishedConnectionsToThePortCount() {
        #expect(BackendConnections.count(inTable: table, toPort: 8082) == 1)
        #expect(BackendConnections.count(inTable: table, toPort: 8081) == 1)
        #expect(BackendConnections.count(inTable: table, toPort: 8083) == 0)
        #expect(BackendConnections.count(inTable: "", toPort: 8082) == 0)
    }
}
