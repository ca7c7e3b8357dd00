import VMToolsCore

/// `tpm`: with `vm_tpm=2.0` an emulated TPM 2.0 (vm.settings(5), TPM):
/// swtpm runs beside QEMU with its state in the run directory's `tpm/` (the
/// VM home's), and QEMU reaches it through `tpm-crb`. `--terminate` ends
/// swtpm when QEMU closes the control socket, however QEMU ends.
public enum TpmModule: BuildCmdModule {
    public static let name = "tpm"

    public static func build(_ c: inout QemuCommand) throws {
        guard try c.vm.tpm() == .v2 else { return }
        guard let dir = c.runDirectory else { throw c.invalid(SettingKey.tpm, "a TPM needs a VM home or a run-time directory") }
        // An export describes the TPM for another host, which brings its own swtpm.
        guard let swtpm = Subprocess.which("swtpm", path: c.environment["PATH"]) ?? (c.export ? "swtpm" : nil) else {
            throw c.invalid(SettingKey.tpm, "swtpm is not installed (Debian: apt-get install swtpm)")
        }
        let state = dir.appendingPathComponent(VMFileNames.tpmDirectory)
        let exists = FileSystem.isDirectory(state)
        if !exists { c.plan.directoriesToCreate.append(state) }
        c.plan.machine.tpm = .init(stateDirectory: state, stateExists: exists)
        let socket = dir.appendingPathComponent(VMFileNames.tpmSocket)
        MonitorModule.staleSocket(socket, &c)
        // Paths relative to the run directory, where swtpm and QEMU start:
        // swtpm cannot escape a comma in a path, and a socket path is short.
        c.plan.helpers.append(.init(executable: swtpm, arguments: [
            "socket", "--tpm2",
            "--tpmstate", "dir=\(VMFileNames.tpmDirectory),mode=0600",
            "--ctrl", "type=unixio,path=\(VMFileNames.tpmSocket),mode=0600",
            "--pid", "file=\(VMFileNames.tpmPid)",
            "--terminate",
        ], readyPath: socket, log: dir.appendingPathComponent(VMFileNames.tpmLog)))
        c.append("-chardev", "socket,id=chrtpm,path=./\(qemuEscape(VMFileNames.tpmSocket))",
                 "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-crb,tpmdev=tpm0")
    }
}
