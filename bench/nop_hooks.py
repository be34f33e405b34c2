#!/usr/bin/env python3
"""nop_hooks.py IN OUT: a copy of the -finstrument-functions executable IN
in which every call to the hooks is a 5-byte NOP and every tail jump to the
exit hook a `ret` (then NOPs): the program as the compiler shaped it for the
hooks (arguments set up, registers saved, no tail calls of its own), with
no hook ever reached.  The best any call-site patching can do: the bench's
"nop" variant, whose overhead over the uninstrumented build is the part of
an excluded function's cost that lies in the code's shape.

Finds the sites with objdump (direct calls and jumps to the hooks or their
PLT entries, -fno-plt's `call/jmp *GOT`), maps addresses to file offsets
with the ELF program headers (readelf), and checks each site's bytes before
writing."""
import re
import subprocess
import sys

NOP5 = bytes([0x0f, 0x1f, 0x44, 0x00, 0x00])


def loads(path):
    """[(vaddr, offset, filesz)] of the PT_LOAD segments."""
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True,
                         check=True).stdout
    segs = []
    for m in re.finditer(r"^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+"
                         r"0x([0-9a-f]+)", out, re.M):
        off, vaddr, filesz = (int(x, 16) for x in m.groups())
        segs.append((vaddr, off, filesz))
    return segs


def file_offset(segs, addr):
    for vaddr, off, filesz in segs:
        if vaddr <= addr < vaddr + filesz:
            return off + addr - vaddr
    raise SystemExit("nop_hooks: address %#x is in no loaded segment" % addr)


def main():
    src, dst = sys.argv[1:3]
    dis = subprocess.run(["objdump", "-d", "-w", src], capture_output=True, text=True,
                         check=True).stdout
    segs = loads(src)
    data = bytearray(open(src, "rb").read())
    site = re.compile(r"\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)\s*(call|jmp)\s.*"
                      r"<__cyg_profile_func_(enter|exit)(?:@plt|@Base)?>")
    n = {"call": 0, "jmp": 0}
    section = None
    for line in dis.splitlines():
        if line.startswith("Disassembly of section "):
            section = line.split()[-1].rstrip(":")
        m = site.match(line)
        if not m or section.startswith(".plt"):
            continue  # the PLT entries stay: nothing reaches them any more
        addr = int(m.group(1), 16)
        raw = bytes.fromhex(m.group(2).replace(" ", ""))
        kind, hook = m.group(3), m.group(4)
        off = file_offset(segs, addr)
        if bytes(data[off:off + len(raw)]) != raw:
            raise SystemExit("nop_hooks: bytes at %#x differ from objdump's" % addr)
        if kind == "call" and raw[0] == 0xe8 and len(raw) == 5:
            data[off:off + 5] = NOP5
        elif kind == "call" and raw[:2] == b"\xff\x15" and len(raw) == 6:
            data[off:off + 6] = b"\x66" + NOP5
        elif kind == "jmp" and hook == "exit" and (raw[0] == 0xe9 or raw[:2] == b"\xff\x25"):
            data[off] = 0xc3
        else:
            continue  # the PLT entry itself, or a form not made by a compiler
        n[kind] += 1
    with open(dst, "wb") as f:
        f.write(data)
    print("nop_hooks: %s: %d calls made NOPs, %d tail jumps made ret" % (dst, n["call"], n["jmp"]))


if __name__ == "__main__":
    main()
