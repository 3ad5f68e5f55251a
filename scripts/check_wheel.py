#!/usr/bin/env python3
"""Checks a built wheel: its platform tag, and that its compiled module links only against
what the platform provides.

    check_wheel.py WHEEL EXPECTED_TAG_REGEX

- Windows (PE): every imported DLL is a system DLL (python3.dll for the abi3 API, ws2_32,
  kernel32, ntdll, bcrypt, advapi32, userenv, crypt32...): no MinGW runtime
  (libgcc_s, libwinpthread), no pythonXY.dll. Read with pefile.
- macOS (Mach-O, thin or fat): every LC_LOAD_DYLIB is /usr/lib/libSystem or a system
  framework, and libpython is not linked (abi3 modules resolve Python at load time).
  Read by the small parser below.
- Linux (ELF): every DT_NEEDED is one the policy allows (manylinux2014's list; for musl,
  the names musl's loader satisfies from itself: its ldso/dynlink.c resolves any
  "libc.*", "libpthread.*", "libm.*"... to the running libc, so zig's "libc.so" is as good
  as "libc.musl-x86_64.so.1"), and no glibc symbol version above 2.17 (none at all for
  musl). Read with pyelftools (auditwheel's own dependency); scripts/build-wheels also runs
  `auditwheel show` on the glibc wheels.

Prints one line per wheel; exits 1 with the reasons when a check fails.
"""

from __future__ import annotations

import re
import struct
import sys
import zipfile
from pathlib import PurePosixPath
from typing import List

WINDOWS_SYSTEM_DLLS = {
    "python3.dll",  # the stable ABI: one wheel for every CPython >= 3.9
    "kernel32.dll", "ntdll.dll", "ws2_32.dll", "bcrypt.dll", "bcryptprimitives.dll",
    "advapi32.dll", "userenv.dll", "crypt32.dll", "secur32.dll", "ncrypt.dll", "user32.dll",
    "shell32.dll", "ole32.dll", "oleaut32.dll", "msvcrt.dll", "ucrtbase.dll",
    "vcruntime140.dll",  # the MSVC runtime: shipped by CPython itself (python.org, conda)
}
WINDOWS_API_SETS = re.compile(r"^api-ms-win-[a-z0-9-]+\.dll$")

MACOS_ALLOWED = re.compile(r"^(/usr/lib/libSystem\.B\.dylib|/usr/lib/libiconv\.2\.dylib|/usr/lib/libcharset\.1\.dylib"
                           r"|/usr/lib/libresolv\.9\.dylib"
                           r"|/System/Library/Frameworks/[A-Za-z0-9]+\.framework/Versions/[A-Z]/[A-Za-z0-9]+)$")


def pe_imports(data: bytes) -> List[str]:
    import pefile  # type: ignore[import-untyped]

    pe = pefile.PE(data=data, fast_load=True)
    pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"],
                                           pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT"]])
    names = [e.dll.decode() for e in getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])]
    names += [e.dll.decode() for e in getattr(pe, "DIRECTORY_ENTRY_DELAY_IMPORT", [])]
    return names


LC_REQ_DYLD = 0x80000000
DYLIB_COMMANDS = {0xC: "LC_LOAD_DYLIB", 0x18 | LC_REQ_DYLD: "LC_LOAD_WEAK_DYLIB",
                  0x1F | LC_REQ_DYLD: "LC_REEXPORT_DYLIB", 0x20: "LC_LAZY_LOAD_DYLIB",
                  0x23 | LC_REQ_DYLD: "LC_LOAD_UPWARD_DYLIB"}


def macho_dylibs(data: bytes, offset: int = 0) -> List[str]:
    """The dylibs a Mach-O image loads (every slice of a fat binary)."""
    magic = struct.unpack_from(">I", data, offset)[0]
    if magic in (0xCAFEBABE, 0xCAFEBABF):  # fat: big-endian slice table
        n = struct.unpack_from(">I", data, offset + 4)[0]
        out: List[str] = []
        for i in range(n):
            if magic == 0xCAFEBABE:
                _, _, off, _, _ = struct.unpack_from(">iiIII", data, offset + 8 + 20 * i)
            else:
                _, _, off, _, _, _ = struct.unpack_from(">iiQQII", data, offset + 8 + 32 * i)
            out += macho_dylibs(data, off)
        return out
    le_magic = struct.unpack_from("<I", data, offset)[0]
    if le_magic not in (0xFEEDFACE, 0xFEEDFACF):
        raise ValueError(f"not a little-endian Mach-O image (magic {le_magic:#x})")
    is64 = le_magic == 0xFEEDFACF
    ncmds = struct.unpack_from("<I", data, offset + 16)[0]
    pos = offset + (32 if is64 else 28)
    out = []
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if cmd in DYLIB_COMMANDS:
            name_off = struct.unpack_from("<I", data, pos + 8)[0]
            raw = data[pos + name_off:pos + size]
            out.append(raw.split(b"\0", 1)[0].decode())
        pos += size
    return out


def macho_unbound(data: bytes) -> List[str]:
    """Imported symbols that no linked library provides, other than Python's (an abi3
    module finds those in the interpreter at load time): llvm-nm -m says "(from LIB)" for the
    others. None when llvm-nm is not installed."""
    import os
    import shutil
    import subprocess
    import tempfile

    nm = shutil.which("llvm-nm") or next((p for p in (f"/usr/bin/llvm-nm-{v}" for v in range(20, 13, -1)) if os.path.exists(p)), None)
    if nm is None:
        return None  # type: ignore[return-value]
    with tempfile.NamedTemporaryFile(suffix=".so") as f:
        f.write(data)
        f.flush()
        out = subprocess.run([nm, "-m", "--undefined-only", f.name], capture_output=True, text=True, check=True).stdout
    syms = [ln.split()[2] for ln in out.splitlines() if "(undefined)" in ln and "(from " not in ln]
    return sorted({s for s in syms if not s.startswith(("_Py", "__Py"))})


MANYLINUX2014_LIBS = {"libgcc_s.so.1", "libstdc++.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libc.so.6",
                      "libnsl.so.1", "libutil.so.1", "libpthread.so.0", "libresolv.so.2", "libX11.so.6",
                      "libXext.so.6", "libXrender.so.1", "libICE.so.6", "libSM.so.6", "libGL.so.1",
                      "libgobject-2.0.so.0", "libgthread-2.0.so.0", "libglib-2.0.so.0",
                      "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}
MUSL_SELF = re.compile(r"^(lib(c|pthread|rt|m|dl|util|xnet)\.so(\.[0-9]+)*|libc\.musl-[a-z0-9_]+\.so\.1|ld-musl-[a-z0-9_]+\.so\.1)$")


def elf_links(data: bytes, musl: bool) -> "tuple[List[str], List[str]]":
    """(DT_NEEDED, problems)."""
    import io

    from elftools.elf.dynamic import DynamicSection  # type: ignore[import-untyped]
    from elftools.elf.elffile import ELFFile  # type: ignore[import-untyped]
    from elftools.elf.gnuversions import GNUVerNeedSection  # type: ignore[import-untyped]

    elf = ELFFile(io.BytesIO(data))
    needed: List[str] = []
    versions: List[str] = []
    for sec in elf.iter_sections():
        if isinstance(sec, DynamicSection):
            needed += [t.needed for t in sec.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
        if isinstance(sec, GNUVerNeedSection):
            for _, auxes in sec.iter_versions():
                versions += [a.name for a in auxes]
    problems = []
    for lib in needed:
        ok = MUSL_SELF.match(lib) if musl else lib in MANYLINUX2014_LIBS
        if not ok:
            problems.append(f"needs {lib}, which the platform does not provide")
    glibc = [v for v in versions if v.startswith("GLIBC_")]
    if musl and glibc:
        problems.append(f"needs glibc symbol versions on musl: {sorted(set(glibc))}")
    too_new = [v for v in glibc if tuple(int(x) for x in v[6:].split(".") if x.isdigit()) > (2, 17)]
    if too_new:
        problems.append(f"needs glibc symbol versions newer than 2.17: {sorted(set(too_new))}")
    return needed, problems


def main() -> int:
    wheel, expected = sys.argv[1], sys.argv[2]
    problems: List[str] = []
    name = PurePosixPath(wheel).name
    tag = "-".join(name[:-len(".whl")].split("-")[2:])
    if not re.fullmatch(expected, tag):
        problems.append(f"tag {tag!r} is not {expected!r}")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/WHEEL"))
        wheel_meta = z.read(meta).decode()
        listed = {t.strip() for t in re.findall(r"^Tag: (.+)$", wheel_meta, re.M)}
        py, abi, plat = tag.split("-")
        named = {f"{a}-{b}-{c}" for a in py.split(".") for b in abi.split(".") for c in plat.split(".")}
        if listed != named:
            problems.append(f"WHEEL lists tags {sorted(listed)}, the file name says {sorted(named)}")
        if "Root-Is-Purelib: false" not in wheel_meta:
            problems.append("WHEEL does not say Root-Is-Purelib: false")
        modules = [n for n in names if re.search(r"websocket/_native[^/]*\.(so|pyd)$", n)]
        if len(modules) != 1:
            problems.append(f"expected one compiled module, found {modules}")
            links: List[str] = []
        else:
            data = z.read(modules[0])
            if data[:2] == b"MZ":
                links = pe_imports(data)
                bad = [d for d in links if d.lower() not in WINDOWS_SYSTEM_DLLS and not WINDOWS_API_SETS.match(d.lower())]
                if not any(d.lower() == "python3.dll" for d in links):
                    problems.append("the module does not import python3.dll (abi3)")
            elif data[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
                links = macho_dylibs(data)
                bad = [d for d in links if not MACOS_ALLOWED.match(d)]
                unbound = macho_unbound(data)
                if unbound is None:
                    links.append("(llvm-nm not found: imported symbols not checked)")
                elif unbound:
                    problems.append(f"symbols no linked library provides (add them to scripts/macos-stubs): {unbound}")
            elif data[:4] == b"\x7fELF":
                links, elf_problems = elf_links(data, musl="musllinux" in tag)
                problems += elf_problems
                bad = []
            else:
                links, bad = [], [f"unknown binary format {data[:4]!r}"]
            problems += [f"links against {d}, which the platform does not provide" for d in bad]
    if problems:
        print(f"FAIL {name}:\n  " + "\n  ".join(problems))
        return 1
    print(f"ok   {name}: links {', '.join(links)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
