"""A synthetic ClamAV signature database of the size and shape of the official main + daily sets.

    .venv/bin/python benchmarks/clamav_synth.py [--scale 1.0] [--out DIR]    # prints the folder

Why synthetic: freshclam cannot reach ClamAV's mirrors from this machine (DOMAIN.md §5), and a clamd
loaded with two test signatures costs nothing per byte and ~30 MB, which is not what production pays.
The official database holds several million signatures (ClamAV's update announcements give main.cvd
about 6.6 M and daily.cvd about 2 M), nearly all of them file hashes, plus tens of thousands of body and
logical signatures; this generator writes the same kinds in the same proportions (``SHAPE``), in the
text formats ClamAV documents, so that clamd parses, indexes and matches them the way it would the real
ones:

- ``.hdb`` MD5 and ``.hsb`` SHA-256 whole-file hashes with their file size (log-uniform 1 KB-20 MB), a
  few SHA-256 with a wildcard size; ``.mdb`` PE-section hashes. Loaded into size-keyed hash tables.
- ``.ndb`` body signatures with wildcards (``??``, nibbles, ``{n-m}``, ``*``, alternatives), target types
  and offsets as in the official set. About a third start with a byte string that benign files really
  contain (``%PDF``, ``stream``, ``<script``, ``PK``...), as many real ones do, so that the matcher's
  candidate checks on a clean package cost what they would; the rest start with random bytes.
- ``.ldb`` logical signatures: 2-5 sub-signatures (some case-insensitive or wide) joined by ``&``, ``|``
  and counts, a few with an offset.

What it cannot reproduce: bytecode signatures, phishing (.pdb/.wdb), icon and certificate signatures, and
the real patterns' distribution of prefixes. Scan speed on clean files is driven by the body and logical
patterns, load time and memory by all of them; both are measured, and labelled synthetic, by the
benchmarks that use it (``bench_ssi.py``, ``bench_load.py``).

Every set also holds three canaries, so that a benchmark proves the database is loaded and matching
before it measures anything: ``canary_files()`` returns a file matched by an MD5 hash signature, one
matched by a body signature with wildcards and one matched by a logical signature.

The output is deterministic for a (scale, seed) pair and is kept in ``var/bench/clamav-db/`` once built
(about 0.7 GB at scale 1); a ``.complete`` file written last marks a finished build.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = ROOT / "var" / "bench" / "clamav-db"
SEED = 20261202
FORMAT_VERSION = 2  # bump when the generator's output changes: a cached set of an older version is rebuilt

# Signatures per kind at scale 1: about 8.4 million, the size of main + daily.
SHAPE: dict[str, int] = {
    "hdb": 2_600_000,  # MD5 of whole files
    "hsb": 3_300_000,  # SHA-256 of whole files
    "mdb": 2_400_000,  # MD5 of PE sections
    "ndb": 50_000,  # body signatures with wildcards
    "ldb": 30_000,  # logical signatures
}

# Byte strings that clean proofs really contain, by ClamAV target type: 0 any, 3 HTML, 4 mail,
# 5 graphics, 7 normalised ASCII text, 10 PDF (and 1 PE, which no proof should be).
_COMMON_PREFIXES: dict[int, list[bytes]] = {
    0: [b"PK\x03\x04", b"\x00\x00\x00\x00", b"http://", b"https://", b"<?xml", b"\r\n\r\n"],
    1: [b"MZ\x90\x00", b"\x55\x8b\xec", b"\xe8\x00\x00\x00\x00", b"This program"],
    2: [b"\xd0\xcf\x11\xe0", b"Attribute VB_Name", b"AutoOpen", b"Shell("],
    3: [b"<script", b"<iframe", b"document.", b"eval(", b"<div", b"function("],
    4: [b"Content-Type: ", b"Content-Transfer-Encoding: base64", b"MIME-Version: 1.0"],
    5: [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"IDAT", b"JFIF"],
    6: [b"\x7fELF\x02\x01", b"/bin/sh", b"/tmp/"],
    7: [b"function ", b"var ", b"http://", b"window."],
    10: [b"/JavaScript", b"/OpenAction", b"stream", b" 0 obj", b"/Filter /FlateDecode", b"%PDF-1."],
}
# Target types drawn with these weights: Windows executables dominate the real set. "Any file" (0) is the
# matcher every proof goes through, and the share of wildcard patterns there sets clamd's cost per byte:
# at 10 % clamd read random bytes 60x slower than with the test signatures, at 5 % 7x, at 2.6 % 2.5x (same
# run, load ~11). Published runs of the official set read ordinary data at ~23 MB/s (2368 MB in 111 s,
# ClamAV 1.4.1, 8.7 M signatures: alphagov/govuk-helm-charts#2403), a few times slower than a clamd with
# a handful of signatures on a quiet machine here (~32 MB/s), so 2.6 % is the share kept.
_TARGETS = [0] + [1] * 18 + [2] * 4 + [3] * 4 + [4] * 2 + [5] * 2 + [6] * 2 + [7] * 4 + [10] * 2
STATIC_SHARE = 0.55  # body signatures without any wildcard (ClamAV matches those with Boyer-Moore)
_FAMILIES = ["Win.Trojan", "Win.Malware", "Doc.Dropper", "Pdf.Exploit", "Html.Phishing", "Js.Downloader",
             "Email.Phishing", "Unix.Trojan", "Xls.Downloader", "Win.Ransomware"]

# The canaries: content of our own, so that nothing benign matches them by chance.
_CANARY_HASH = b"proofcheck synthetic database canary: matched by its MD5 (.hdb)\n"
_CANARY_BODY = b"PCSYN-BODY-CANARY-" + bytes(range(0x41, 0x51)) + b"-7c21"
_CANARY_LOGICAL = (b"PCSYN-LOGICAL-CANARY-PART-ONE", b"PCSYN-LOGICAL-CANARY-PART-TWO")


def canary_files() -> dict[str, tuple[bytes, str]]:
    """{kind: (content, signature name clamd must report)} for each canary kind."""
    return {
        "hash": (_CANARY_HASH * 3, "Proofcheck.Synthetic.Canary.Hash"),
        "body": (b"prefix text " + _CANARY_BODY + b" suffix text\n", "Proofcheck.Synthetic.Canary.Body"),
        "logical": (b"one " + _CANARY_LOGICAL[0] + b" middle " + _CANARY_LOGICAL[1] + b" end\n",
                    "Proofcheck.Synthetic.Canary.Logical"),
    }


def _canary_lines() -> dict[str, list[str]]:
    files = canary_files()
    hashed, hash_name = files["hash"]
    body = _CANARY_BODY.hex()
    # The body canary exercises the wildcards too: a byte, a nibble and a bounded gap.
    body = body[:20] + "??" + body[22:30] + "?" + body[31:40] + "{0-4}" + body[40:]
    one, two = (part.hex() for part in _CANARY_LOGICAL)
    return {
        "hdb": [f"{hashlib.md5(hashed).hexdigest()}:{len(hashed)}:{hash_name}"],  # noqa: S324 (ClamAV's format)
        "ndb": [f"{files['body'][1]}:0:*:{body}"],
        "ldb": [f"{files['logical'][1]};Engine:51-255,Target:0;0&1;{one};{two}"],
    }


def _name(rng: random.Random, n: int) -> str:
    return f"Proofcheck.Synthetic.{rng.choice(_FAMILIES)}.Agent-{n}-0"


def _size(rng: random.Random) -> int:
    return int(math.exp(rng.uniform(math.log(1024), math.log(20 * 2**20))))


def _hex(rng: random.Random, count: int) -> str:
    return rng.getrandbits(8 * count).to_bytes(count, "big").hex()


def _body_pattern(rng: random.Random, target: int, common: bool) -> str:
    """A hex pattern: a static string of 10-40 bytes, or 2-5 static parts of 4-24 bytes joined by wildcards."""
    head = rng.choice(_COMMON_PREFIXES[target]) + rng.randbytes(4) if common else b""
    if rng.random() < STATIC_SHARE:
        return (head + rng.randbytes(rng.randint(10, 40))).hex()
    parts = [head.hex() or _hex(rng, rng.randint(4, 24))]
    for _ in range(rng.randint(1, 4)):
        joint = rng.random()
        if joint < 0.35:
            parts.append("??" * rng.randint(1, 4))
        elif joint < 0.55:
            low = rng.randint(0, 16)
            parts.append(f"{{{low}-{low + rng.randint(1, 48)}}}")
        elif joint < 0.65:
            parts.append("*")
        elif joint < 0.80:
            parts.append(f"({_hex(rng, 1)}|{_hex(rng, 1)}|{_hex(rng, 1)})")
        else:
            parts.append(_hex(rng, 1)[0] + "?")  # high nibble
        parts.append(_hex(rng, rng.randint(4, 24)))
    return "".join(parts)


def _offset(rng: random.Random, target: int) -> str:
    roll = rng.random()
    if roll < 0.70:
        return "*"
    if roll < 0.80:
        return str(rng.choice([0, 0, 2, 4, 64]))
    if roll < 0.90:
        return f"{rng.randint(0, 512)},{rng.randint(16, 4096)}"  # floating offset
    if target == 1:
        return f"EP+{rng.randint(0, 256)}"
    return f"EOF-{rng.randint(32, 4096)}"


def _hash_lines(kind: str, count: int, rng: random.Random) -> Iterator[str]:
    for n in range(count):
        if kind == "hdb":
            yield f"{_hex(rng, 16)}:{_size(rng)}:{_name(rng, n)}"
        elif kind == "hsb":
            if n % 200 == 0:  # a few hash signatures of any size (functionality level 73: ClamAV 0.98+)
                yield f"{_hex(rng, 32)}:*:{_name(rng, n)}:73"
            else:
                yield f"{_hex(rng, 32)}:{_size(rng)}:{_name(rng, n)}"
        else:  # mdb: section size, MD5 of the section
            yield f"{rng.randint(512, 2**20) // 512 * 512}:{_hex(rng, 16)}:{_name(rng, n)}"


def _ndb_lines(count: int, rng: random.Random) -> Iterator[str]:
    for n in range(count):
        target = rng.choice(_TARGETS)
        pattern = _body_pattern(rng, target, common=rng.random() < 0.33)
        yield f"{_name(rng, n)}:{target}:{_offset(rng, target)}:{pattern}"


def _subsignature(rng: random.Random, target: int) -> str:
    roll = rng.random()
    if roll < 0.15:  # an ASCII string, case-insensitive and/or wide, as phishing and script sigs are
        text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_.(") for _ in range(rng.randint(8, 20)))
        return text.encode().hex() + rng.choice(["::i", "::w", "::iw", "::a"])
    pattern = _body_pattern(rng, target, common=roll < 0.40)
    if roll > 0.92:
        return f"{rng.randint(0, 1024)},{rng.randint(64, 8192)}:{pattern}"  # a floating offset
    return pattern


def _logical_expression(rng: random.Random, count: int) -> str:
    indexes = [str(i) for i in range(count)]
    shape = rng.random()
    if shape < 0.5:
        return "&".join(indexes)
    if shape < 0.7:
        return f"({'|'.join(indexes[:-1])})&{indexes[-1]}" if count > 2 else "|".join(indexes)
    if shape < 0.85:
        return "&".join(indexes[:-1]) + f"&{indexes[-1]}>{rng.randint(1, 3)}"
    return f"({indexes[0]}|{indexes[1]})" + "".join(f"&{i}" for i in indexes[2:]) + (
        f"&{indexes[0]}={rng.randint(1, 2)}" if count == 2 else "")


def _ldb_lines(count: int, rng: random.Random) -> Iterator[str]:
    for n in range(count):
        target = rng.choice(_TARGETS)
        subs = [_subsignature(rng, target) for _ in range(rng.randint(2, 5))]
        yield (f"{_name(rng, n)};Engine:51-255,Target:{target};{_logical_expression(rng, len(subs))};"
               + ";".join(subs))


_WRITERS: dict[str, Callable[[int, random.Random], Iterator[str]]] = {
    "hdb": lambda count, rng: _hash_lines("hdb", count, rng),
    "hsb": lambda count, rng: _hash_lines("hsb", count, rng),
    "mdb": lambda count, rng: _hash_lines("mdb", count, rng),
    "ndb": _ndb_lines,
    "ldb": _ldb_lines,
}


def counts(scale: float) -> dict[str, int]:
    return {kind: max(1, round(count * scale)) for kind, count in SHAPE.items()}


def build(folder: Path, scale: float = 1.0, seed: int = SEED) -> dict[str, int]:
    """Write the database into ``folder`` (emptied first); returns the signatures written per file."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    written: dict[str, int] = {}
    canaries = _canary_lines()
    for kind, count in counts(scale).items():
        rng = random.Random(f"{seed}:{kind}")  # noqa: S311 (deterministic test data, not secrets)
        path = folder / f"synthetic.{kind}"
        with path.open("w", encoding="ascii", newline="\n") as out:
            lines = canaries.get(kind, [])
            out.write("".join(line + "\n" for line in lines))
            batch: list[str] = []
            for line in _WRITERS[kind](count, rng):
                batch.append(line)
                if len(batch) == 50_000:
                    out.write("\n".join(batch) + "\n")
                    batch.clear()
            if batch:
                out.write("\n".join(batch) + "\n")
        written[path.name] = count + len(lines)
    return written


def ensure(scale: float = 1.0, seed: int = SEED, root: Path = DEFAULT_ROOT) -> tuple[Path, dict[str, object]]:
    """The database folder for (scale, seed), built unless a complete one is already there; and its facts."""
    folder = root / f"v{FORMAT_VERSION}-scale{scale:g}-seed{seed}"
    marker = folder / ".complete"
    if marker.is_file():
        facts: dict[str, object] = json.loads(marker.read_text("utf-8"))
        facts["reused"] = True
        return folder, facts
    started = time.perf_counter()
    written = build(folder, scale, seed)
    facts = {
        "signatures": written,
        "total": sum(written.values()),
        "bytes": sum(p.stat().st_size for p in folder.iterdir()),
        "build_seconds": round(time.perf_counter() - started, 1),
        "scale": scale,
        "seed": seed,
    }
    marker.write_text(json.dumps(facts), "utf-8")  # clamd ignores files of unknown extensions
    facts["reused"] = False
    return folder, facts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the production size")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_ROOT, help="where the database folders are kept")
    args = parser.parse_args()
    folder, facts = ensure(args.scale, args.seed, args.out)
    print(json.dumps(facts), file=sys.stderr)
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
