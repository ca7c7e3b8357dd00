/// This build of vmtools, as `--version` and generated `vm.settings` headers name it.
public enum Release {
    public static let version = "0.1.0"
}
