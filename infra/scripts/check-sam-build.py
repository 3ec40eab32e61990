"""Checks `sam build`'s output: every function of template.yaml has a
.aws-sam/build/<Function>/bootstrap that is an ELF executable for aarch64,
and prints the size of its deployment zip (what Lambda receives).

usage: python3 infra/scripts/check-sam-build.py   (from the repository root, after sam build)
Exits 1 when a function is missing or is not an arm64 binary, or when the
authorizer's zip passes AUTHORIZER_ZIP_LIMIT: it runs on every API call's
cold start, and its size is part of that start (BENCHMARKS.md).
"""
import io
import os
import re
import sys
import zipfile

EM_AARCH64 = 183
AUTHORIZER_ZIP_LIMIT = 3_000_000


def functions(template_text):
    """Logical ids of the AWS::Serverless::Function resources."""
    ids, current = [], None
    for line in template_text.splitlines():
        m = re.match(r"^  ([A-Za-z0-9]+):\s*$", line)
        if m:
            current = m.group(1)
        elif current and re.match(r"^    Type:\s*AWS::Serverless::Function\s*$", line):
            ids.append(current)
    return ids


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        return None
    little = head[5] == 1
    return int.from_bytes(head[18:20], "little" if little else "big")


def zipped_size(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        with open(path, "rb") as f:
            z.writestr(info, f.read(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buf.tell()


def main():
    ids = functions(open("template.yaml").read())
    if not ids:
        print("no functions found in template.yaml")
        return 1
    failed = False
    print(f"{'function':<22} {'arch':<8} {'binary':>10} {'zip':>10}")
    for fn in ids:
        path = os.path.join(".aws-sam", "build", fn, "bootstrap")
        if not os.path.isfile(path):
            print(f"{fn:<22} MISSING {path}")
            failed = True
            continue
        machine = elf_machine(path)
        arch = "aarch64" if machine == EM_AARCH64 else f"e_machine={machine}"
        if machine != EM_AARCH64:
            failed = True
        zipped = zipped_size(path)
        print(f"{fn:<22} {arch:<8} {os.path.getsize(path)/1e6:>8.2f}MB {zipped/1e6:>8.3f}MB")
        if fn == "AuthorizerFunction" and zipped > AUTHORIZER_ZIP_LIMIT:
            print(f"  the authorizer's zip is over {AUTHORIZER_ZIP_LIMIT/1e6:.1f} MB")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
