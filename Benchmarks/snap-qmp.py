#!/usr/bin/env python3
# The by-hand baseline of Benchmarks/snap.sh: one QMP snapshot job on a
# running VM, waited for through QEMU's job events, as a person or a script
# would send it. Usage: snap-qmp.py QMP_SOCKET save|load|delete TAG NODE...
# (the first NODE holds the RAM and devices for save and load), or
# snap-qmp.py QMP_SOCKET node - IMAGE: prints the node QEMU writes IMAGE through.
import json, os, socket, sys, time

# With SNAP_QMP_TIMES=FILE, the milliseconds from connecting to the job's
# dismissal are appended to FILE: the by-hand cost without python's start.
began = time.monotonic()

sock_path, action, tag, nodes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
s = socket.socket(socket.AF_UNIX)
s.connect(sock_path)
f = s.makefile("rw")

def read():
    return json.loads(f.readline())

def send(cmd, **args):
    f.write(json.dumps({"execute": cmd, "arguments": args} if args else {"execute": cmd}) + "\n")
    f.flush()
    while True:
        m = read()
        if "return" in m or "error" in m:
            if "error" in m:
                sys.exit(f"snap-qmp.py: {cmd}: {m['error']['desc']}")
            return m["return"]

read()
send("qmp_capabilities")
if action == "node":
    for n in send("query-named-block-nodes", flat=True):
        if n.get("drv") == "qcow2" and not n.get("ro") and n.get("file") == nodes[0]:
            print(n["node-name"])
            sys.exit(0)
    sys.exit(f"snap-qmp.py: no writable qcow2 node for {nodes[0]}")
job = "bench-" + action
args = {"job-id": job, "tag": tag, "devices": nodes}
if action != "delete":
    args["vmstate"] = nodes[0]
send("snapshot-" + action, **args)
while True:
    m = read()
    if m.get("event") == "JOB_STATUS_CHANGE" and m["data"]["id"] == job and m["data"]["status"] == "concluded":
        break
jobs = send("query-jobs")
err = next((j.get("error") for j in jobs if j["id"] == job), None)
send("job-dismiss", id=job)
if err:
    sys.exit(f"snap-qmp.py: {action}: {err}")
if os.environ.get("SNAP_QMP_TIMES"):
    with open(os.environ["SNAP_QMP_TIMES"], "a") as t:
        t.write(f"{(time.monotonic() - began) * 1000:.3f}\n")
