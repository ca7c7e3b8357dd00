import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct ArgumentParserTests {
    let spec = VMInfoCommand.spec
    let up = VMUpCommand.spec

    @Test func groupsFlagsAndKeepsTheirOrder() throws {
        let a = try ArgumentParser.parse(["-tsi", "-b", "vm"], spec: spec)
        #expect(a.occurrences.map(\.letter) == ["t", "s", "i", "b"])
        #expect(a.operands == ["vm"])
    }

    @Test func takesOptionArgumentsAttachedOrSeparate() throws {
        let a = try ArgumentParser.parse(["-ovm_ram_size=1G", "-o", "vm_cpu_count=2", "-yo", "vm_name=x", "-t", "macos"], spec: up)
        #expect(a.values("o") == ["vm_ram_size=1G", "vm_cpu_count=2", "vm_name=x"])
        #expect(a.has("y") && a.last("t") == "macos")
    }

    @Test func stopsAtDoubleDashAndAtTheFirstOperand() throws {
        let a = try ArgumentParser.parse(["-s", "--", "-n", "--", "-"], spec: up)
        #expect(a.operands == ["-n", "--", "-"])
        let b = try ArgumentParser.parse(["vm", "-s"], spec: up)
        #expect(b.operands == ["vm", "-s"] && !b.has("s"))
        let c = try ArgumentParser.parse(["-", "-s"], spec: up)
        #expect(c.operands == ["-", "-s"])
        let d = try ArgumentParser.parse(["-o", "--", "x"], spec: up)
        #expect(d.values("o") == ["--"] && d.operands == ["x"])
    }

    @Test func reportsUnknownOptionsAndMissingArguments() {
        #expect(expectError { _ = try ArgumentParser.parse(["-x"], spec: spec) }?.message == "unknown option -x")
        #expect(expectError { _ = try ArgumentParser.parse(["-ix"], spec: spec) }?.code == .usage)
        #expect(expectError { _ = try ArgumentParser.parse(["-o"], spec: up) }?.message.contains("needs an argument") == true)
    }

    /// `vmps -w [seconds]`: attached, the next word if it is a number, else none.
    @Test func takesAnOptionalNumberAttachedOrWhenTheNextWordIsOne() throws {
        let ps = VMPsCommand.spec
        func w(_ args: [String]) throws -> (has: Bool, value: String?, rest: [String]) {
            let a = try ArgumentParser.parse(args, spec: ps)
            return (a.has("w"), a.last("w"), a.operands + a.occurrences.filter { $0.letter != "w" }.map { "-\($0.letter)" })
        }
        #expect(try w(["-w5"]) == (true, "5", []))
        #expect(try w(["-w", "0.5", "-p", "7"]) == (true, "0.5", ["7", "-p"]))
        #expect(try w(["-jw", "3"]) == (true, "3", ["-j"]))
        #expect(try w(["-w"]) == (true, nil, []))
        #expect(try w(["-w", "-p", "7"]) == (true, nil, ["7", "-p"]))
        #expect(try w(["-w", "--", "7"]) == (true, nil, ["7"]))
        #expect(try w(["-w", "x"]) == (true, nil, ["x"]))
        #expect(try w(["-w", "1.2.3"]) == (true, nil, ["1.2.3"]))
        #expect(try w(["-wx"]) == (true, "x", []))
        #expect(try w(["-j"]) == (false, nil, ["-j"]))
        #expect(ps.usage.contains("-w [seconds]") && ps.synopsis.allSatisfy { $0.contains("[-w [seconds]]") })
    }

    @Test func countsVerbosity() throws {
        #expect(try ArgumentParser.parse(["-vvq", "-v"], spec: spec).verbosityDelta == 2)
    }

    @Test func vmrndmacTakesUnknownDashWordsAsOperands() throws {
        let a = try ArgumentParser.parse(["-x", "y"], spec: VMRndMacCommand.spec)
        #expect(a.operands == ["-x", "y"])
        #expect(try ArgumentParser.parse(["-h"], spec: VMRndMacCommand.spec).has("h"))
    }
}
