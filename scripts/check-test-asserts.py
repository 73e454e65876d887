#!/usr/bin/env python3
"""Flags cmocka asserts that can run off a test's main thread.

cmocka's assert_*() and fail*() longjmp into the test runner, so they are
only defined on the test's main thread. Code that runs on a scheduler thread
(actor callbacks), a libuv loop thread (loop callbacks), a log sink or a
helper thread must use TPT_CHECK, TPT_CHECK_INT_EQ or TPT_CHECK_MSG from
tests/testutil.h instead (see there).

Heuristic (C files formatted by the repository's .clang-format, so a
definition's name starts a line and its body is between a '{' and a '}'
in column 0):
  * a function is a callback when its parameters (function-pointer
    parameters left out) take a `tp_ctx *`, a libuv handle or request
    (`uv_..._t *`) or a `tp_log_level` (a log sink, called on any thread),
    or when its name is passed to pthread_create() / uv_thread_create();
  * a function called from a callback is one too (calls are resolved within
    the file first, then among the other files' non-static functions);
  * a cmocka assert in a callback is a finding, printed as
    file:line: name: reason.
A line that is right but looks wrong to the heuristic (a callback that only
ever runs on the main thread) carries the comment `tpt-main-thread` with a
reason.

    scripts/check-test-asserts.py [files...]   default: tests/**/*.c|h
Exit status 1 when anything is found.
"""
import glob
import os
import re
import sys

ASSERT_RE = re.compile(r"\b(assert_[a-z_]+|fail|fail_msg|skip)\s*\(")
PARAM_RE = re.compile(r"\btp_ctx\s*\*|\buv_\w+_t\s*\*|\btp_log_level\b")
FNPTR_RE = re.compile(r"\(\s*\*\s*\w*\s*\)\s*\([^()]*\)")
THREAD_RE = re.compile(
    r"\b(?:pthread_create\s*\([^,]*,[^,]*,\s*(\w+)"
    r"|uv_thread_create\s*\([^,]*,\s*(\w+))")
CALL_RE = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
NOT_CALLS = {"if", "for", "while", "switch", "return", "sizeof", "defined"}
WAIVER = "tpt-main-thread"


class Func:
    def __init__(self, path, name, static, sig, body, line):
        self.path, self.name, self.static = path, name, static
        self.sig, self.body, self.line = sig, body, line
        self.reason = None


def strip_comments(text):
    # Blank out comments and strings, keep line structure and waivers.
    def blank(m):
        s = m.group(0)
        if WAIVER in s:
            return s
        return re.sub(r"[^\n]", " ", s)
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', blank, text,
                  flags=re.S)


def parse(path):
    lines = strip_comments(open(path, encoding="utf-8").read()).split("\n")
    funcs, i = [], 0
    while i < len(lines):
        ln = lines[i]
        m = re.match(r"^(?:[A-Za-z_][\w\s\*]*?[\s\*])?([A-Za-z_]\w*)\(", ln)
        if not m or ln.startswith(("#", " ", "\t")) or "=" in ln.split("(")[0]:
            i += 1
            continue
        sig, j = [], i
        while j < len(lines) and not lines[j].startswith("{"):
            sig.append(lines[j])
            if ";" in lines[j] or (j > i and lines[j].startswith("}")):
                break
            j += 1
        if j >= len(lines) or not lines[j].startswith("{") or \
                any(";" in s for s in sig):
            i += 1
            continue
        prev = lines[i - 1] if i > 0 else ""
        static = ln.startswith("static") or prev.startswith("static")
        k = j + 1
        while k < len(lines) and not lines[k].startswith("}"):
            k += 1
        funcs.append(Func(path, m.group(1), static, " ".join(sig),
                          lines[j:k + 1], j + 1))
        i = k + 1
    return funcs, "\n".join(lines)


def uses_cmocka(path, seen=None):
    """The file includes <cmocka.h>, itself or through a test header."""
    seen = seen or set()
    if path in seen or not os.path.exists(path):
        return False
    seen.add(path)
    text = open(path, encoding="utf-8").read()
    if re.search(r"#\s*include\s*<cmocka\.h>", text):
        return True
    return any(uses_cmocka(os.path.join(os.path.dirname(path), inc), seen)
               for inc in re.findall(r'#\s*include\s*"([^"]+)"', text))


def main(argv):
    files = argv or sorted(glob.glob("tests/**/*.[ch]", recursive=True))
    by_file, extern, threads = {}, {}, set()
    for path in files:
        funcs, text = parse(path)
        by_file[path] = {f.name: f for f in funcs}
        for f in funcs:
            if not f.static:
                extern.setdefault(f.name, f)
        for m in THREAD_RE.finditer(text):
            threads.add((path, m.group(1) or m.group(2)))

    work = []
    for path, funcs in by_file.items():
        for f in funcs.values():
            params = FNPTR_RE.sub("", f.sig[f.sig.find("("):])
            if (path, f.name) in threads:
                f.reason = "thread entry (pthread_create)"
            elif PARAM_RE.search(params):
                f.reason = "callback (%s)" % PARAM_RE.search(params).group(0)
            if f.reason:
                work.append(f)
    while work:
        f = work.pop()
        for m in CALL_RE.finditer("\n".join(f.body)):
            name = m.group(1)
            if name in NOT_CALLS:
                continue
            g = by_file[f.path].get(name) or extern.get(name)
            if g is not None and g.reason is None:
                g.reason = "called from %s (%s)" % (f.name, f.reason)
                work.append(g)

    found = 0
    for path, funcs in by_file.items():
        if not uses_cmocka(path):
            continue
        for f in sorted(funcs.values(), key=lambda f: f.line):
            if f.reason is None:
                continue
            for n, ln in enumerate(f.body):
                m = ASSERT_RE.search(ln)
                # A function of that name defined in the file is its own
                # (tests/soak has an exit()-based fail()), not cmocka's.
                if m and WAIVER not in ln and m.group(1) not in funcs:
                    found += 1
                    print("%s:%d: %s: %s() off the main thread: %s" %
                          (f.path, f.line + n, f.name, m.group(1), f.reason))
    if found:
        print("check-test-asserts: %d cmocka assert(s) in callbacks; use "
              "TPT_CHECK* (tests/testutil.h)" % found, file=sys.stderr)
        return 1
    print("check-test-asserts: %d files, no cmocka assert off the main thread"
          % len(files))
    return 0


if __name__ == "__main__":
    args = [os.path.abspath(a) for a in sys.argv[1:]]
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(main([os.path.relpath(a) for a in args]))
