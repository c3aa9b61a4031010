#!/usr/bin/env python3
"""gpu_stubs.py -- the shared libraries a staged CUDA build needs, with
stand-ins for the ones it never calls (bench/gpu_stage.sh uses it).

  gpu_stubs.py OUTDIR PROGRAM...

Debian's FFmpeg libraries load some 90 others (codecs, network protocols,
X11, GLib...), about 56 MB compressed: more than a GPU call may carry. The
libraries in REAL are copied; every other library that one of them (or a
program) loads directly is replaced by a stub with the same soname that
defines exactly the symbols its users import, with their symbol versions
(the loader checks both, and libavcodec is linked BIND_NOW). A stub
function returns 0 -- the answer FFmpeg's format probes (libopenmpt's,
called on every unknown file) take as "not this format"; with
OSP_STUB_TRACE set it also prints its name on stderr, to find a call that
should not happen. The C runtime and the CUDA libraries are left to
the GPU machine.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

REAL = re.compile(r"^lib(msgpackc|cjson|openblas|gfortran|quadmath|png16|z|gomp|avformat|avcodec|"
                  r"avutil|swscale|swresample|x264|x265|numa|vpx|theoraenc|theoradec|ogg|gme|"
                  r"bz2|lzma)\.so")
SYSTEM = re.compile(r"^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libstdc\+\+|"
                    r"libgcc_s|libcuda|libcublas|libcudnn|libcudart|libnvidia)")


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def resolved(program):
    """soname -> path of everything PROGRAM loads, as ldd resolves it"""
    libs = {}
    for line in run("ldd", program).splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m:
            libs[m.group(1)] = m.group(2)
    return libs


def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", run("readelf", "-d", path))


def dynsyms(path):
    """(name, version or None, type, defined, size) for each dynamic symbol"""
    out = []
    for line in run("readelf", "--dyn-syms", "-W", path).splitlines():
        f = line.split()
        if len(f) < 8 or not f[0].rstrip(":").isdigit() or f[4] == "LOCAL":
            continue
        name, _, version = f[7].partition("@")
        out.append((name, version.lstrip("@") or None, f[3], f[6] != "UND", int(f[2], 0)))
    return out


def make_stub(soname, real_path, users, outdir):
    exports = {(n, v): (t, s) for n, v, t, d, s in dynsyms(real_path) if d}
    exported_names = {n for n, _ in exports}
    imports = set()
    for user in users:
        for n, v, t, d, s in dynsyms(user):
            if not d and n in exported_names:
                imports.add((n, v))
    src, versions = [], {}
    src.append("#include <stdio.h>\n#include <stdlib.h>")
    src.append(f'static void trace(const char *f) {{ if (getenv("OSP_STUB_TRACE")) '
               f'fprintf(stderr, "{soname}: stub %s called\\n", f); }}')
    for i, (name, version) in enumerate(sorted(imports, key=lambda x: (x[0], x[1] or ""))):
        kind, size = exports.get((name, version)) or next(
            (exports[k] for k in exports if k[0] == name), ("FUNC", 0))
        if kind == "OBJECT":
            src.append(f"char {name}[{max(size, 8)}];")
        else:
            src.append(f'long {name}(void) {{ trace("{name}"); return 0; }}')
        versions.setdefault(version, []).append(name)
    # An unversioned reference binds to a default-version definition; the
    # linker takes no anonymous node beside named ones.
    named = [v for v in versions if v]
    if named and None in versions:
        versions[named[0]] += versions.pop(None)
    with tempfile.TemporaryDirectory() as tmp:
        c = os.path.join(tmp, "stub.c")
        with open(c, "w") as fh:
            fh.write("\n".join(src) + "\n")
        cmd = ["cc", "-shared", "-fPIC", "-fno-builtin", "-w", "-o", os.path.join(outdir, soname),
               f"-Wl,-soname,{soname}", c]
        if any(v for v in versions):
            script = os.path.join(tmp, "stub.map")
            with open(script, "w") as fh:
                for v, names in versions.items():
                    if v:
                        fh.write(f"{v} {{ global: {'; '.join(names)}; }};\n")
            cmd.append(f"-Wl,--version-script={script}")
        subprocess.run(cmd, check=True)
    return len(imports)


def main():
    outdir, programs = sys.argv[1], sys.argv[2:]
    paths = {}
    for p in programs:
        paths.update(resolved(p))
    keep = {s: p for s, p in paths.items() if REAL.match(s)}
    # users of each library to stub: the programs and the real libraries
    users = {}
    for user in programs + list(keep.values()):
        for s in needed(user):
            if not SYSTEM.match(s) and s not in keep:
                users.setdefault(s, []).append(user)
    for s, p in keep.items():
        shutil.copy(p, os.path.join(outdir, s))
    for s, us in sorted(users.items()):
        n = make_stub(s, paths[s], us, outdir)
        print(f"gpu_stubs.py: stub {s} ({n} symbols)")
    print(f"gpu_stubs.py: {len(keep)} libraries copied, {len(users)} stubs")


if __name__ == "__main__":
    main()
