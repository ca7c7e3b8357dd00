import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct VMSettingsParserTests {
    @Test(arguments: [
        "vm_name=a b", "vm_name=\"3G\"", "vm_name=$HOME", "vm_name=a;b", "vm_name= x", "vm_name =x",
        "vm_name=a|b", "vm_name=a&b", "vm_name=~/x", "vm_name=a:~/x", "vm_name=a<b", "cfg_ui_verbosity=4", "VM_name=x",
        "vm_name=x # comment", "echo hi", "vm_name=`id`", "vm_name=$(id)", "parent", "parent a b", "template 'a b'",
        "vm_na-me=x", "template", "vm_name='unterminated",
    ])
    func refusesTheLinesTheOriginalRefuses(_ line: String) throws {
        let e = expectError { _ = try VMSettingsFile.parse("vm_ram_size=1G\n\(line)\n", path: "/vm/vm.settings") }
        #expect(e?.subject == "/vm/vm.settings:2")
        #expect(e?.code == .failure)
    }

    @Test func acceptsWhatTheOriginalAccepts() throws {
        let text = "   vm_name=x\nvm_a=x\t\nvm_b=\nvm_c=''\nvm_d='$HOME'\nvm_e=a'b c'd\nvm_f=\\'x\nvm_Name=x\nvm_g=café\r\n# c\n\n  # indented comment\n"
        let f = try VMSettingsFile.parse(text, path: "s")
        #expect(f.value("vm_name") == "x")
        #expect(f.value("vm_a") == "x")
        #expect(f.value("vm_b") == "")
        #expect(f.value("vm_c") == "")
        #expect(f.value("vm_d") == "$HOME")
        #expect(f.value("vm_e") == "ab cd")
        #expect(f.value("vm_f") == "'x")
        #expect(f.value("vm_Name") == "x")
        #expect(f.value("vm_g") == "café")
    }

    @Test func readsParentAndTemplatesInOrder() throws {
        let f = try VMSettingsFile.parse("parent '/vms/my vm'\ntemplate a b_2\ntemplate c a\nvm_name=n\n", path: "s")
        #expect(f.parent == "/vms/my vm")
        #expect(f.templates == ["a", "b_2", "c"])
        #expect(f.statements.first == .parent(path: "/vms/my vm", line: 1))
    }

    @Test func readsTheOriginalsBrokenMultiTemplateForm() throws {
        let f = try VMSettingsFile.parse("template macos\nextra\nvm_name=x\n", path: "s")
        #expect(f.templates == ["macos", "extra"])
        #expect(f.value("vm_name") == "x")
    }

    @Test func refusesASecondParent() throws {
        let e = expectError { _ = try VMSettingsFile.parse("parent /a\nparent /b\n", path: "f") }
        #expect(e?.subject == "f:2")
        #expect(e?.message.contains("second 'parent'") == true)
    }

    @Test func ignoresVmHomeWithAWarning() throws {
        let f = try VMSettingsFile.parse("vm_home=/elsewhere\nvm_name=x\n", path: "f")
        #expect(f.value("vm_home") == nil)
        #expect(f.warnings.count == 1)
        #expect(f.warnings[0].contains("f:1"))
    }

    @Test func listsEveryInvalidLineInOneMessage() throws {
        let e = expectError { _ = try VMSettingsFile.parse("vm_a=1\nvm_b=x y\nvm_c=ok\nbad\nvm_d=$x\n", path: "f") }
        #expect(e?.subject == "f:2")
        #expect(e?.message.contains("also invalid: lines 4, 5") == true)
        #expect(e?.description.contains("\n") == false)
    }

    @Test func laterAssignmentsWin() throws {
        let f = try VMSettingsFile.parse("vm_a=1\nvm_b=2\nvm_a=3\n", path: "f")
        #expect(f.assignments.map(\.name) == ["vm_a", "vm_b"])
        #expect(f.value("vm_a") == "3")
    }
}
