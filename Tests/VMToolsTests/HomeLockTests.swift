import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct HomeLockTests {
    @Test func isExclusiveWithABoundedWait() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let g = try resolver(s).loadGlobal()
        let first = try HomeLock.acquire(s.url("vm"), global: g, wait: 0)
        #expect(FileSystem.readLink(s.url("vm/.vm.settings.lock")) == "\(s.url("vm"))#\(getpid())@\(FileSystem.hostName())")
        let start = SystemClock.now()
        let e = expectError { _ = try HomeLock.acquire(s.url("vm"), global: g, wait: 0.5) }
        let waited = SystemClock.now() - start
        #expect(waited >= 0.5 && waited < 3)
        #expect(e?.message.contains("'vmfix -l \(s.url("vm"))' removes the stale lock") == true)
        #expect(e?.message.contains("process \(getpid())") == true)
        #expect(first.isHeld)
        first.release()
        #expect(!s.exists("vm/.vm.settings.lock"))
        let second = try HomeLock.acquire(s.url("vm"), global: g, wait: 0)
        #expect(second.isHeld)
    }

    /// The wait comes from cfg_limit_waitlock (vmtools(1) LOCKING: with 2 the
    /// command gives up after more than 1 s and less than 5 s; with 0 at once).
    @Test(arguments: [(2, 1.0, 5.0), (0, 0.0, 1.0)])
    func waitsAsLongAsTheConfigurationSays(_ seconds: Int, _ atLeast: Double, _ below: Double) throws {
        let s = Scratch()
        try s.mkdir("vm")
        var cli = CommandLineSettings()
        try cli.parseOverride("cfg_limit_waitlock=\(seconds)")
        let g = try resolver(s, cli).loadGlobal()
        let held = try HomeLock.acquire(s.url("vm"), global: g)
        let start = SystemClock.now()
        #expect(expectError { _ = try HomeLock.acquire(s.url("vm"), global: g) } != nil)
        let waited = SystemClock.now() - start
        #expect(waited >= atLeast && waited < below, "waited \(waited) s")
        #expect(held.isHeld)
    }

    /// The waiter runs on a thread of its own: a task could wait for a
    /// thread of the test pool while other suites' blocking tests hold them.
    @Test func waitsForALockThatIsReleased() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let g = try resolver(s).loadGlobal()
        let first = try HomeLock.acquire(s.url("vm"), global: g, wait: 0)
        let dir = s.url("vm")
        let logPath = s.url("waiter.log")
        let fd = open(logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        let console = Console(command: "test", out: OutputStream(fd: fd), err: OutputStream(fd: fd))
        let got = NSLock()
        // What the waiter got: "held", "not held" or the error it threw.
        nonisolated(unsafe) var acquired: String? = nil
        let waiter = Thread {
            let outcome: String
            do { outcome = try HomeLock.acquire(dir, global: g, wait: 20, console: console).isHeld ? "held" : "not held" } catch { outcome = "\(error)" }
            got.withLock { acquired = outcome }
        }
        waiter.start()
        // Release only once the waiter says it is waiting.
        #expect(waitUntil(10) { textIfPresent(logPath).contains("waiting up to 20 s") })
        #expect(try String(contentsOfFile: logPath, encoding: .utf8).contains("held by vmtools process \(getpid())"))
        first.release()
        #expect(waitUntil(30) { got.withLock { acquired != nil } })
        #expect(got.withLock { acquired } == "held")
    }

    @Test func replacesTheStaleLockOfADeadProcess() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let g = try resolver(s).loadGlobal()
        // A pid that cannot be alive: a child we started and reaped.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        symlink("\(s.url("vm"))#\(p.processIdentifier)@\(FileSystem.hostName())", s.url("vm/.vm.settings.lock"))
        let lock = try HomeLock.acquire(s.url("vm"), global: g, wait: 0)
        #expect(lock.isHeld)
    }

    @Test func onlyBreaksLocksThatNameThisDirectory() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let g = try resolver(s).loadGlobal()
        // Looks stale, but was not written for this directory: leave it alone.
        symlink("/elsewhere#999999999@\(FileSystem.hostName())", s.url("vm/.vm.settings.lock"))
        #expect(expectError { _ = try HomeLock.acquire(s.url("vm"), global: g, wait: 0.2) } != nil)
        #expect(FileSystem.readLink(s.url("vm/.vm.settings.lock")) == "/elsewhere#999999999@\(FileSystem.hostName())")
    }

    @Test func honoursLocksOfTheOriginalTool() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let g = try resolver(s).loadGlobal()
        // The original's lock: a link to the directory itself.
        symlink(s.url("vm"), s.url("vm/.vm.settings.lock"))
        let e = expectError { _ = try HomeLock.acquire(s.url("vm"), global: g, wait: 0.2) }
        #expect(e?.message.contains("without owner information") == true)
        #expect(FileSystem.readLink(s.url("vm/.vm.settings.lock")) == s.url("vm"))
        // Nothing was created inside the home (the original's `ln -s` bug).
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.url("vm")) == [".vm.settings.lock"])
    }

    @Test func theOriginalsLnFailsOnOurLock() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let g = try resolver(s).loadGlobal()
        let lock = try HomeLock.acquire(s.url("vm"), global: g, wait: 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/ln")
        p.arguments = ["-s", s.url("vm"), s.url("vm/.vm.settings.lock")]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus != 0)
        #expect(lock.isHeld)
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.url("vm")) == [".vm.settings.lock"])
    }

    /// A shared lock (vmfix -n): no link, readers together, writers kept
    /// out and waited for.
    @Test func sharedLocksWriteNoLinkAndKeepWritersOut() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let g = try resolver(s).loadGlobal()
        let dir = s.url("vm"), link = s.url("vm/.vm.settings.lock")
        let reader = try HomeLock.acquire(dir, global: g, wait: 0, shared: true)
        #expect(reader.isHeld && reader.isShared)
        #expect(!FileSystem.lexists(link))
        let second = try HomeLock.acquire(dir, global: g, wait: 0, shared: true)
        #expect(second.isHeld)
        #expect(expectError { _ = try HomeLock.acquire(dir, global: g, wait: 0.2) } != nil)
        #expect(!FileSystem.lexists(link))
        reader.release()
        second.release()
        #expect(!reader.isHeld)
        let writer = try HomeLock.acquire(dir, global: g, wait: 0)
        let e = expectError { _ = try HomeLock.acquire(dir, global: g, wait: 0.2, shared: true) }
        #expect(e?.message.contains("process \(getpid())") == true)
        writer.release()
        // The original tool's lock is waited for, and left alone.
        symlink(dir, link)
        #expect(expectError { _ = try HomeLock.acquire(dir, global: g, wait: 0.2, shared: true) }?.message.contains("without owner information") == true)
        #expect(FileSystem.readLink(link) == dir)
        unlink(link)
        // A stale lock of ours: nobody holds it, so a reader goes ahead and
        // leaves it for vmfix -l.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        let stale = "\(dir)#\(p.processIdentifier)@\(FileSystem.hostName())"
        symlink(stale, link)
        let late = try HomeLock.acquire(dir, global: g, wait: 0, shared: true)
        #expect(late.isHeld)
        late.release()
        #expect(FileSystem.readLink(link) == stale)
    }

    @Test func refusesWhatCannotBeLocked() throws {
        let s = Scratch()
        let g = try resolver(s).loadGlobal()
        try s.write("file", "x")
        #expect(expectError { _ = try HomeLock.acquire(s.url("file"), global: g, wait: 0) }?.message.contains("not a directory") == true)
    }
}
