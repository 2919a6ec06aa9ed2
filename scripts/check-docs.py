#!/usr/bin/env python3
"""The docs check (run by .ci/run): the docs say only what the tree holds.

  scripts/check-docs.py              check the repository this script is in
  scripts/check-docs.py --self-test  show that each rule catches what it should

Rules, each finding printed as `file:line: what`, exit 1 when there is one:
  * every relative link and #anchor in a Markdown file resolves (GitHub's
    heading slugs), and so does every link to this repository's own
    `blob/main/` URLs (the alert rules' runbook_url);
  * every repository path a Markdown file or a code comment names
    (src/..., tests/..., scripts/..., bench/..., deploy/..., docs/...,
    examples/..., fuzz/..., .ci/...) exists;
  * README.md is at most 15 KB, and its quick start runs `cargo run
    --release` with every default plus test commands that .ci/run runs.
"""

import os
import re
import subprocess
import sys
import tempfile

README_MAX_BYTES = 15 * 1024
REPO_URL = "https://github.com/comm100/webhook-worker/blob/main/"
TOP_DIRS = r"(?:\.ci|\.cargo|src|tests|scripts|bench|deploy|docs|examples|fuzz)"
# A path as prose names it: a top-level folder, then path characters, ending
# on one that cannot be punctuation closing the sentence.
PATH_RE = re.compile(r"(?<![\w./$-])" + TOP_DIRS + r"/(?:[\w.-]*/)*[\w-]*(?:\.\w+)*")
LINK_RE = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
URL_RE = re.compile(re.escape(REPO_URL) + r"([\w./-]+)(#[\w-]+)?")
CODE_SUFFIXES = (".rs", ".sh", ".py", ".toml", ".yml", ".yaml")
CODE_NAMES = ("Dockerfile", "run", ".gitignore", ".dockerignore")
SKIP_DIRS = ("fuzz/corpus/", "bench/results/", "target/")


def tracked_files(root):
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout
    return sorted(
        f for f in set(out.splitlines())
        if not f.startswith(SKIP_DIRS) and os.path.exists(os.path.join(root, f))
    )


def slug(heading):
    """GitHub's anchor for a heading: links and code marks dropped, lower
    case, punctuation removed, spaces to dashes."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def prose_lines(text):
    """(line number, line, in a fenced block) for each line."""
    fenced = False
    for n, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            yield n, line, True
            continue
        yield n, line, fenced


def anchors(path, cache={}):
    if path not in cache:
        seen, found = {}, set()
        with open(path, encoding="utf-8") as f:
            for _, line, fenced in prose_lines(f.read()):
                m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
                if m and not fenced:
                    base = slug(m.group(1))
                    k = seen.get(base, 0)
                    seen[base] = k + 1
                    found.add(base if k == 0 else f"{base}-{k}")
        cache[path] = found
    return cache[path]


def check_target(root, src, n, target, problems, relative_to=None):
    """One link target: a path (relative to `relative_to`) and an anchor."""
    path, _, anchor = target.partition("#")
    base = os.path.dirname(os.path.join(root, src)) if relative_to is None else relative_to
    full = os.path.normpath(os.path.join(base, path)) if path else os.path.join(root, src)
    if not full.startswith(os.path.normpath(root) + os.sep) and full != os.path.normpath(root):
        problems.append(f"{src}:{n}: link leaves the repository: {target}")
        return
    if not os.path.exists(full):
        problems.append(f"{src}:{n}: broken link: {target} (no {os.path.relpath(full, root)})")
        return
    if anchor and full.endswith(".md") and anchor not in anchors(full):
        problems.append(f"{src}:{n}: broken anchor: {target} (no heading '#{anchor}' in {os.path.relpath(full, root)})")


def check_markdown(root, f, problems):
    with open(os.path.join(root, f), encoding="utf-8") as fh:
        text = fh.read()
    for n, line, fenced in prose_lines(text):
        if not fenced:
            for m in LINK_RE.finditer(re.sub(r"`[^`]*`", "", line)):
                target = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    url = URL_RE.match(target)
                    if url:
                        check_target(root, f, n, url.group(1) + (url.group(2) or ""), problems, root)
                    continue
                check_target(root, f, n, target, problems)
        check_paths(root, f, n, line, problems)


def ignored(root, path):
    """Whether git ignores `path` (build output, fuzz artifacts)."""
    return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=root).returncode == 0


def check_paths(root, f, n, text, problems):
    for m in PATH_RE.finditer(text):
        p = m.group(0).rstrip(".")
        if not p or p.endswith("-") or text[m.end():m.end() + 1] in ("*", "<", "{"):
            continue  # a pattern (`tests/it/proxy*.rs`, `results/<date>.json`), not a path
        if not os.path.exists(os.path.join(root, p)) and not ignored(root, p):
            problems.append(f"{f}:{n}: names a path that does not exist: {p}")


def comment_of(f, line):
    s = line.strip()
    if f.endswith(".rs"):
        i = s.find("//")
        return s[i + 2:] if i >= 0 else None
    if s.startswith("#") and not s.startswith("#!") and not s.startswith("#["):
        return s[1:]
    return None


def check_code(root, f, problems):
    try:
        with open(os.path.join(root, f), encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except UnicodeDecodeError:
        return
    for n, line in enumerate(lines, 1):
        for url in URL_RE.finditer(line):
            check_target(root, f, n, url.group(1) + (url.group(2) or ""), problems, root)
        comment = comment_of(f, line)
        if comment is not None:
            check_paths(root, f, n, comment, problems)


def quick_start_commands(readme):
    text = open(readme, encoding="utf-8").read()
    m = re.search(r"^## Quick start\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not m:
        return None
    block = re.search(r"```sh\n(.*?)```", m.group(1), re.S)
    if not block:
        return None
    return [l.split("#")[0].strip() for l in block.group(1).splitlines() if l.split("#")[0].strip()]


def check_readme(root, problems):
    readme = os.path.join(root, "README.md")
    size = os.path.getsize(readme)
    if size > README_MAX_BYTES:
        problems.append(f"README.md:1: {size} bytes, more than {README_MAX_BYTES}")
    commands = quick_start_commands(readme)
    if not commands:
        problems.append("README.md:1: no ```sh block under '## Quick start'")
        return
    if commands[0] != "cargo run --release":
        problems.append(f"README.md:1: the quick start's first command is '{commands[0]}', not 'cargo run --release' with every default")
    ci = [l.strip() for l in open(os.path.join(root, ".ci/run"), encoding="utf-8")]
    for c in commands[1:]:
        if c not in ci:
            problems.append(f"README.md:1: the quick start runs '{c}', which .ci/run does not run")


def check(root):
    problems = []
    for f in tracked_files(root):
        if f.endswith(".md"):
            check_markdown(root, f, problems)
        elif f.endswith(CODE_SUFFIXES) or os.path.basename(f) in CODE_NAMES:
            check_code(root, f, problems)
    check_readme(root, problems)
    return problems


def self_test():
    """A small repository with one of each fault; each must be reported."""
    with tempfile.TemporaryDirectory() as root:
        def write(path, text):
            os.makedirs(os.path.dirname(os.path.join(root, path)) or root, exist_ok=True)
            with open(os.path.join(root, path), "w", encoding="utf-8") as fh:
                fh.write(text)
        write(".ci/run", "#!/bin/sh\nscripts/test.sh\n")
        write("scripts/test.sh", "#!/bin/sh\n")
        write("docs/ops.md", "# Ops\n\n## Runbook: `X` rising\n\nSee [readme](../README.md#demo).\n")
        write("README.md", "# R\n\n## Quick start\n\n```sh\ncargo run --release\nscripts/test.sh\n```\n\n## Demo\n\n"
              "[ok](docs/ops.md#runbook-x-rising) [gone](docs/nope.md) [bad anchor](docs/ops.md#runbook-y)\n"
              "[self](#quick-start) [missing self](#nowhere) `src/gone.rs` and scripts/test.sh\n")
        write("src/lib.rs", "//! See docs/ops.md and tests/deploy.rs.\nfn f() {} // " + REPO_URL + "docs/ops.md#runbook-z\n")
        subprocess.run(["git", "init", "-q", root], check=True)
        got = check(root)
        expected = [
            "README.md:12: broken link: docs/nope.md",
            "README.md:12: broken anchor: docs/ops.md#runbook-y",
            "README.md:12: names a path that does not exist: docs/nope.md",
            "README.md:13: broken anchor: #nowhere",
            "README.md:13: names a path that does not exist: src/gone.rs",
            "src/lib.rs:1: names a path that does not exist: tests/deploy.rs",
            "src/lib.rs:2: broken anchor: docs/ops.md#runbook-z",
        ]
        missing = [e for e in expected if not any(g.startswith(e) for g in got)]
        extra = [g for g in got if not any(g.startswith(e) for e in expected)]
        for g in got:
            print(f"  caught: {g}")
        write("README.md", "# R\n\n## Quick start\n\n```sh\ncargo run --release --prefix x\ncargo test\n```\n")
        got2 = check(root)
        for g in got2:
            print(f"  caught: {g}")
        if not any("first command" in g for g in got2) or not any("'cargo test'" in g for g in got2):
            missing.append("the quick start's commands against .ci/run")
        if missing or extra:
            print(f"self-test FAILED: not caught {missing}, wrongly reported {extra}", file=sys.stderr)
            return 1
        print("self-test: every fault caught, nothing else reported")
        return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"docs check: {len(problems)} problem(s)")
        return 1
    print("docs check: every link, anchor and named path resolves; README.md "
          f"{os.path.getsize(os.path.join(root, 'README.md'))} bytes; quick start matches .ci/run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
