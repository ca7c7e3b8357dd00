import VMToolsCore

/// The directories one `vmfix` run looks at, each listed once with what it
/// holds: every check reads this instead of walking the tree again
/// (Benchmarks/README.md, scale: 1,000 VMs were walked four times, with two
/// `stat`s per entry each time).
///
/// The order is `FileSystem.subdirectories`': each operand, then with
/// `recursive` everything below it, parents before children, bytewise,
/// links not followed, backup directories not entered.
package struct DirectoryScan {
    package struct Directory {
        package let path: String
        /// Sorted bytewise.
        package let entries: [FileSystem.DirectoryEntry]

        package func entry(_ name: String) -> FileSystem.DirectoryEntry? { entries.first { $0.name == name } }

        package func has(_ name: String) -> Bool { entry(name) != nil }

        /// `VMHome.isHome`, answered from the listing.
        package func isHome(global: GlobalConfig) -> Bool {
            entry(global.fileNames.settings)?.isRegularFile(in: path) ?? false
        }
    }

    package let directories: [Directory]

    package init(_ operands: [String], recursive: Bool) {
        var out: [Directory] = []
        for root in operands {
            var stack = [root]
            while let dir = stack.popLast() {
                // An unreadable directory holds nothing to check, as before.
                let entries = ((try? FileSystem.listDirectoryEntries(dir)) ?? []).sorted { bytewiseLess($0.name, $1.name) }
                if recursive {
                    for e in entries.reversed() where !e.name.hasPrefix("vmtools-backup.") && e.isDirectory(in: dir) {
                        stack.append(dir.appendingPathComponent(e.name))
                    }
                }
                out.append(Directory(path: dir, entries: entries))
            }
        }
        directories = out
    }
}
