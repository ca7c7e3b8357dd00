import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct ChildListTests {
    @Test func isSortedUniqueAndVanishesWhenEmpty() throws {
        let s = Scratch()
        try s.write("p/vm.settings", "vm_name=p\n")
        try s.write("p/b/vm.settings", "parent ..\n")
        let g = try resolver(s).loadGlobal()
        let lock = try HomeLock.acquire(s.url("p"), global: g, wait: 0)
        var list = ChildList()
        try list.add(s.url("p/b"))
        try list.add(s.url("p/B"))
        try list.add(s.url("p/b"))
        try list.add(s.url("p/a b"))
        try list.write(lock, global: g)
        #expect(try s.read("p/childs.lst") == "\(s.url("p/B"))\n\(s.url("p/a b"))\n\(s.url("p/b"))\n")
        let back = try ChildList.read(home: s.url("p"), global: g)
        #expect(back == list)
        #expect(back.missing(global: g) == [s.url("p/B"), s.url("p/a b")])
        #expect(expectError { try list.add("relative") } != nil)
        #expect(expectError { try list.add("/new\nline") } != nil)
        for c in list.children { list.remove(c) }
        try list.write(lock, global: g)
        #expect(!s.exists("p/childs.lst"))
    }
}
