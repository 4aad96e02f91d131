import CLibGit2
import Foundation

extension GitRepository {
    /// Stages every file of the working folder (respecting `.gitignore`) and commits it on the current branch.
    @discardableResult
    func commitAll(message: String, author name: String, email: String) throws(GitError) -> GitObjectID {
        var index: OpaquePointer?
        try gitCheck(git_repository_index(&index, pointer), "open the index of \(path)")
        defer { git_index_free(index) }
        var everything = git_strarray()
        try gitCheck(git_index_add_all(index, &everything, 0, nil, nil), "stage the files of \(path)")
        try gitCheck(git_index_write(index), "write the index of \(path)")
        var treeID = git_oid()
        try gitCheck(git_index_write_tree(&treeID, index), "write the tree of \(path)")
        var tree: OpaquePointer?
        try gitCheck(git_tree_lookup(&tree, pointer, &treeID), "read the new tree")
        defer { git_tree_free(tree) }
        var signature: UnsafeMutablePointer<git_signature>?
        try gitCheck(git_signature_now(&signature, name, email), "make a signature for \(name)")
        defer { git_signature_free(signature) }

        var parent: OpaquePointer?
        var headID = git_oid()
        let hasHead = git_reference_name_to_id(&headID, pointer, "HEAD") == 0
        if hasHead {
            try gitCheck(git_commit_lookup(&parent, pointer, &headID), "read HEAD of \(path)")
        }
        defer { if let parent { git_commit_free(parent) } }
        var commitID = git_oid()
        var parents: [OpaquePointer?] = hasHead ? [parent] : []
        _ = try parents.withUnsafeMutableBufferPointer { buffer throws(GitError) in
            try gitCheck(git_commit_create(&commitID, pointer, "HEAD", signature, signature, "UTF-8", message, tree,
                                           buffer.count, buffer.baseAddress), "commit in \(path)")
        }
        return GitObjectID(commitID)
    }
}

/// Makes a local repository for the demo: the product never runs the `git` executable.
public enum GitRepositoryMaker {
    /// Creates a repository at `path` (a folder with files) with one commit of all its files; returns the commit id.
    public static func initialCommit(at path: String, branch: String = "main", message: String) async throws -> String {
        try await GitWorker.run { _ in
            let repository = try GitRepository.create(at: path)
            try gitCheck(git_repository_set_head(repository.pointer, "refs/heads/\(branch)"), "name the first branch \(branch)")
            return try repository.commitAll(message: message, author: "pushdeploy demo", email: "demo@pushdeploy.invalid").description
        }
    }
}
