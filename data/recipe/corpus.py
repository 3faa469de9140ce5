"""Builds OLMoE-mini's corpus from files that Debian and npm packages put on this machine.

Two domains, each from sources whose licence allows redistribution of samples:
  code   Python standard library (.py, PSF-2.0), JavaScript of the lab's npm
         dependencies (d3 modules, Observable Plot: ISC), C headers of glibc
         (LGPL-2.1+)
  prose  Python's documentation sources (reStructuredText paragraphs with code
         blocks and directives removed; PSF-2.0), and the fortunes database
         (fortune-mod's `fortunes` package; BSD-4-Clause and public domain)

Documents are split train / held-out by a hash of their source path (1 in 20
held out), so the split never depends on file order. Writes
data/corpus/{train,heldout}.jsonl (one {"domain", "source", "text"} per line,
not committed: remade by this script), data/corpus/manifest.json (sources,
package versions, licences, counts and hashes; committed) and held-out samples
per language for the site (data/samples/*.txt; committed).

usage: python3 data/recipe/corpus.py [--max-mb-per-domain 12] [--out data]
"""
import argparse
import glob
import hashlib
import json
import os
import re
import subprocess

HELD_OUT_ONE_IN = 20
MAX_DOC_CHARS = 24_000


def package_version(name):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def npm_version(root, name):
    try:
        with open(os.path.join(root, "node_modules", name, "package.json")) as f:
            return json.load(f)["version"]
    except OSError:
        return None


def read(path):
    with open(path, encoding="utf-8", errors="strict") as f:
        return f.read()


def python_sources():
    for path in sorted(glob.glob("/usr/lib/python3.11/**/*.py", recursive=True)):
        if "/site-packages/" in path or "/dist-packages/" in path:
            continue
        yield path, "python"


def javascript_sources(root):
    patterns = ["node_modules/d3-*/src/**/*.js", "node_modules/@observablehq/plot/src/**/*.js"]
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(root, pattern), recursive=True)):
            yield path, "javascript"


def c_sources():
    for path in sorted(glob.glob("/usr/include/*.h") + glob.glob("/usr/include/x86_64-linux-gnu/bits/*.h")):
        yield path, "c"


def rst_prose(text):
    """Keeps the paragraphs of a reStructuredText file that are prose: drops
    literal blocks (after '::'), directives and their bodies, tables, titles'
    underlines and most inline markup."""
    out, skipping_indent = [], None
    for paragraph in re.split(r"\n\s*\n", text):
        lines = paragraph.split("\n")
        indent = len(lines[0]) - len(lines[0].lstrip())
        if skipping_indent is not None and indent > skipping_indent:
            continue
        skipping_indent = None
        stripped = paragraph.strip()
        if not stripped or stripped.startswith(("..", ">>>", "+-", "==", "--", "|", "$")):
            if stripped.startswith(".."):
                skipping_indent = indent
            continue
        if re.fullmatch(r"[=\-~^\"'`#*+]{3,}", lines[-1].strip()):
            continue  # a title
        ends_literal = stripped.endswith("::")
        stripped = re.sub(r":[a-z:]+:`~?([^`<]*?)(?: <[^>]*>)?`", r"\1", stripped)
        stripped = re.sub(r"``([^`]*)``", r"\1", stripped)
        stripped = re.sub(r"`([^`<]*?)(?: <[^>]*>)?`_*", r"\1", stripped)
        stripped = re.sub(r"\s*\n\s*", " ", stripped).replace("::", ":")
        if len(stripped) > 40 and sum(c.isalpha() for c in stripped) > 0.6 * len(stripped):
            out.append(stripped)
        if ends_literal:
            skipping_indent = indent
    return "\n\n".join(out)


def python_doc_prose():
    for path in sorted(glob.glob("/usr/share/doc/python3.11/html/_sources/**/*.rst.txt", recursive=True)):
        yield path, "prose-docs"


def fortunes():
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if "." in os.path.basename(path) or os.path.isdir(path):
            continue
        yield path, "prose-fortunes"


def held_out(source):
    return int(hashlib.sha256(source.encode()).hexdigest(), 16) % HELD_OUT_ONE_IN == 0


def documents(root):
    for path, kind in list(python_sources()) + list(javascript_sources(root)) + list(c_sources()):
        try:
            text = read(path)
        except (UnicodeDecodeError, OSError):
            continue
        yield "code", kind, os.path.relpath(path, root) if path.startswith(root) else path, text[:MAX_DOC_CHARS]
    for path, kind in python_doc_prose():
        text = rst_prose(read(path))
        if text:
            yield "prose", kind, path, text[:MAX_DOC_CHARS]
    for path, kind in fortunes():
        # each fortune is a document; separators are lines holding only '%'
        for i, fortune in enumerate(re.split(r"\n%\n", read(path))):
            fortune = fortune.strip()
            if len(fortune) > 20:
                yield "prose", kind, f"{path}#{i}", fortune


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-mb-per-domain", type=float, default=12)
    parser.add_argument("--out", default="data")
    args = parser.parse_args()
    root = os.getcwd()
    corpus_dir = os.path.join(args.out, "corpus")
    os.makedirs(corpus_dir, exist_ok=True)
    limit = args.max_mb_per_domain * 1e6
    size = {"code": 0, "prose": 0}
    stats = {}
    samples = {}
    with open(os.path.join(corpus_dir, "train.jsonl"), "w") as train, open(os.path.join(corpus_dir, "heldout.jsonl"), "w") as heldout:
        for domain, kind, source, text in documents(root):
            if size[domain] >= limit:
                continue
            size[domain] += len(text)
            split = "heldout" if held_out(source) else "train"
            (heldout if split == "heldout" else train).write(json.dumps({"domain": domain, "kind": kind, "source": source, "text": text}) + "\n")
            entry = stats.setdefault(f"{kind}/{split}", {"documents": 0, "characters": 0})
            entry["documents"] += 1
            entry["characters"] += len(text)
            if split == "heldout":
                samples.setdefault(kind, []).append(text)
    sample_dir = os.path.join(args.out, "samples")
    os.makedirs(sample_dir, exist_ok=True)
    for kind, texts in samples.items():
        with open(os.path.join(sample_dir, f"{kind}.txt"), "w") as f:
            f.write("\n\n".join(texts)[:6000])
    manifest = {
        "built_by": "data/recipe/corpus.py",
        "held_out": f"1 in {HELD_OUT_ONE_IN} documents, by sha256 of the source path",
        "max_document_characters": MAX_DOC_CHARS,
        "sources": [
            {"kind": "python", "domain": "code", "from": "/usr/lib/python3.11/**/*.py", "package": "libpython3.11-stdlib", "version": package_version("libpython3.11-stdlib"), "licence": "PSF-2.0"},
            {"kind": "javascript", "domain": "code", "from": "node_modules/d3-*/src, node_modules/@observablehq/plot/src", "package": "npm: d3 modules, @observablehq/plot", "version": npm_version(root, "@observablehq/plot"), "licence": "ISC"},
            {"kind": "c", "domain": "code", "from": "/usr/include/*.h, /usr/include/x86_64-linux-gnu/bits/*.h", "package": "libc6-dev", "version": package_version("libc6-dev"), "licence": "LGPL-2.1-or-later (glibc headers)"},
            {"kind": "prose-docs", "domain": "prose", "from": "/usr/share/doc/python3.11/html/_sources (prose paragraphs only)", "package": "python3.11-doc", "version": package_version("python3.11-doc"), "licence": "PSF-2.0"},
            {"kind": "prose-fortunes", "domain": "prose", "from": "/usr/share/games/fortunes", "package": "fortunes", "version": package_version("fortunes"), "licence": "BSD-4-Clause (fortune-mod); quotations as collected"},
        ],
        "counts": stats,
        "characters_per_domain": size,
    }
    for name in ("train.jsonl", "heldout.jsonl"):
        with open(os.path.join(corpus_dir, name), "rb") as f:
            manifest[f"sha256_{name}"] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(corpus_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps({"characters_per_domain": size, "counts": stats}, indent=1))


if __name__ == "__main__":
    main()
