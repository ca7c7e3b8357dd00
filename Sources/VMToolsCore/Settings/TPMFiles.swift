/// The run-time files of the emulated TPM (vm.settings(5), TPM): swtpm's
/// control socket, pid file and log, beside QEMU's in the run directory.
extension VMFileNames {
    /// swtpm's control channel, which QEMU's `-chardev` connects to.
    public static let tpmSocket = "tpm.sock"
    public static let tpmPid = "tpm.pid"
    /// swtpm's output: it runs beside a daemonised QEMU, long after vmup's
    /// terminal or pipe is gone.
    public static let tpmLog = "tpm.log"
}
