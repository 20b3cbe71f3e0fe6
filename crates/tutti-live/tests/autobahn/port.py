"""Port the Autobahn testsuite's WebSocket cases (PyPI autobahntestsuite 0.8.2, Python 2)
to Python 3, mechanically, so fuzz.py can run them with autobahn 0.10.9 (which runs on
Python 3) as the client. Usage: python port.py WHEEL DEST

What changes, and nothing else:
  * lib2to3 over the modules used (case/, caseset.py, fuzzing.py, case.py): print,
    xrange, relative imports, dict views and the like.
  * In the case modules a plain (not u"") string literal was a byte string in Python 2;
    here every byte string is kept as a str of the same bytes, one char per byte
    (latin-1), so a literal with non-ASCII characters (the source is UTF-8) is rewritten
    to the escapes of its UTF-8 bytes, and `.encode("utf8")` gives that str too.
    fuzz.py converts at the wire (str payloads to bytes, received bytes to str), so the
    cases' expected and received events compare exactly as in Python 2.
  * `binascii` and autobahn's `Utf8Validator` in the case modules take such strs.
  * fuzzing.py does not import twisted's TLS (only its server mode uses it).
  * case/__init__.py lists the cases of sections 1-7 only.
  * Generated case classes derive from Case alone (not `(object, Case)`).
  * The package's __init__ imports only what the client needs (not the servers, the
    reports or the other modes).
"""

import io
import os
import re
import shutil
import sys
import tokenize
import warnings
import zipfile

warnings.filterwarnings("ignore")
from lib2to3.main import main as lib2to3_main  # noqa: E402


def py2_bytes_literals(src: str) -> str:
    """Rewrite non-ASCII chars in plain string literals to the \\x escapes of their UTF-8
    bytes (the value Python 2 gave them)."""
    out = []
    toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    lines = src.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    edits = []
    for t in toks:
        if t.type != tokenize.STRING:
            continue
        prefix = re.match(r"[A-Za-z]*", t.string).group(0).lower()
        if "u" in prefix or "b" in prefix or all(ord(c) < 128 for c in t.string):
            continue
        if "r" in prefix:
            raise SystemExit(f"port.py: raw non-ASCII literal not handled: {t.string[:40]}")
        new = "".join(
            c if ord(c) < 128 else "".join(f"\\x{b:02x}" for b in c.encode("utf-8"))
            for c in t.string
        )
        start = offsets[t.start[0] - 1] + t.start[1]
        end = offsets[t.end[0] - 1] + t.end[1]
        edits.append((start, end, new))
    for start, end, new in reversed(edits):
        src = src[:start] + new + src[end:]
    return src


COMPAT = '''"""Python 2 byte-string helpers for the ported cases (see port.py)."""
import binascii as _b


class binascii:
    @staticmethod
    def b2a_hex(s):
        if isinstance(s, str):
            s = s.encode("latin-1")
        return _b.b2a_hex(s).decode("ascii")


from autobahn.websocket.utf8validator import Utf8Validator as _V


class Utf8Validator(_V):
    def validate(self, s):
        return _V.validate(self, s.encode("latin-1") if isinstance(s, str) else s)
'''

INIT = '''from ._version import __version__
version = __version__
'''


def main(wheel: str, dest: str) -> None:
    pkg = os.path.join(dest, "autobahntestsuite")
    shutil.rmtree(pkg, ignore_errors=True)
    os.makedirs(pkg)
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            rel = name[len("autobahntestsuite/"):]
            if not name.startswith("autobahntestsuite/") or not name.endswith(".py"):
                continue
            if rel not in ("_version.py", "caseset.py", "fuzzing.py", "interfaces.py", "report.py",
                           "util.py") and not rel.startswith("case/"):
                continue
            if re.match(r"case/case(9|10|12|13)_", rel):
                continue
            path = os.path.join(pkg, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            src = z.read(name).decode("utf-8")
            if rel.startswith("case/"):
                src = py2_bytes_literals(src)
            with open(path, "w", encoding="utf-8") as f:
                f.write(src)
    with open(os.path.join(pkg, "__init__.py"), "w") as f:
        f.write(INIT)
    with open(os.path.join(pkg, "_py2compat.py"), "w") as f:
        f.write(COMPAT)
    # Only sections 1-7 (9, 10, 12 and 13 need more than this port: zope's `implements`,
    # permessage-deflate).
    init = os.path.join(pkg, "case", "__init__.py")
    with open(init, encoding="utf-8") as f:
        lines = f.readlines()
    with open(init, "w", encoding="utf-8") as f:
        f.writelines(l for l in lines if not re.search(r"[cC]ase(9|10|12|13)_", l))
    rc = lib2to3_main("lib2to3.fixes", ["-w", "-n", "--no-diffs", "-j", "1", pkg])
    if rc:
        raise SystemExit(f"port.py: 2to3 failed ({rc})")
    # TLS (the fuzzing server's) is not used: no pyOpenSSL.
    fz = os.path.join(pkg, "fuzzing.py")
    with open(fz, encoding="utf-8") as f:
        src = f.read()
    old = "from twisted.internet import reactor, ssl\n"
    if old not in src:
        raise SystemExit("port.py: fuzzing.py's twisted import changed")
    with open(fz, "w", encoding="utf-8") as f:
        f.write(src.replace(old, "from twisted.internet import reactor\n"))
    case_dir = os.path.join(pkg, "case")
    for fn in os.listdir(case_dir):
        path = os.path.join(case_dir, fn)
        with open(path, encoding="utf-8") as f:
            src = f.read()
        src = re.sub(r"^(\s*)import binascii$", r"\1from .._py2compat import binascii", src, flags=re.M)
        src = src.replace("from autobahn.websocket.utf8validator import Utf8Validator",
                          "from .._py2compat import Utf8Validator")
        # Python 2's old-style Case with `object` first has no Python 3 MRO.
        src = re.sub(r"\(object, *Case, *\)", "(Case, )", src)
        src = re.sub(r"""\.encode\((["'])utf-?8\1\)""", '.encode("utf-8").decode("latin-1")', src)
        with open(path, "w", encoding="utf-8") as f:
            f.write(src)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
