/// `ram_size`: asks for the memory size; a bare number asks for the unit.
public enum RamSizeModule: ConfigureModule {
    public static let name = "ram_size"

    public static func configure(_ c: inout Configuration) throws {
        guard !c.prompter.assumeYes else { return }
        let current = c.value("vm_ram_size")
        var answer = try c.prompter.ask("RAM size", default: current, help: "A size such as 512M or 2G.") { a in
            let u = a.uppercased()
            let digits = u.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.first != "0" else { return nil }
            let rest = u.dropFirst(digits.count)
            return rest.isEmpty || rest == "M" || rest == "G" ? u : nil
        }
        if answer.last?.isNumber == true {
            let unit = try c.prompter.ask("Megabytes or gigabytes (M or G)", default: "G", help: "M or G.") { a in
                ["M", "G"].contains(a.uppercased()) ? a.uppercased() : nil
            }
            answer += unit
        }
        if answer != current { c.set("vm_ram_size", answer, by: name) }
    }
}
