#!/usr/bin/env python3
"""The README, tried as a new user would: its commands run as written.

  readme_test.py SOURCE_DIR LOCKSTEP_BINARY SCRATCH_DIR

1. Every ```sh block of README.md is cut into commands (backslash
   continuations and here-documents kept together) and each one runs with
   bash in SCRATCH_DIR, where the clone's folders are linked (so paths such
   as tests/data/... work as they do from the clone's top folder) and the
   built `lockstep` is first on PATH. A command must exit 0. The few that
   cannot run here are skipped for a stated reason (SKIP below); a command
   with `...` is an elided form and is skipped too. `lockstep tokenize`
   lines end in a comment with the expected output, which is compared.
2. The layout table lists exactly the top-level folders of the clone (and
   runtime/'s libraries).
3. The `lockstep run` flag table names only flags `lockstep run --help` has,
   with the same defaults, and every flag of the help is in
   docs/batch-jobs.md or docs/distributed.md.
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys

# Commands the test does not run, by a regular expression on the command,
# with the reason (each is covered elsewhere or needs what a clone lacks).
SKIP = [
    (r"^git clone", "the test runs in a clone"),
    (r"^\./launch/setup\.sh", "setup.sh --test is what CI runs; the build is this one"),
    (r"^export PATH=", "the test puts the built lockstep on PATH itself"),
    (r"lockstep convert --from", "needs a downloaded checkpoint (tests/runtime/convert covers the converters)"),
    (r"--model stories15M\.h5", "needs the converted checkpoint of the line before"),
    (r"^huggingface-cli", "downloads from the Hugging Face hub (tests/reference/family_reference_test.py converts each family's layout)"),
    (r"llama-3\.1-8b", "needs a converted Llama 3.1 checkpoint (tests/reference/family_reference_test.py and chat_request_test.py run those)"),
    (r"^lockstep calibrate", "measures the machine for a minute (tests/partitioner/calibrate_cli_test.sh runs it)"),
    (r"^lockstep doctor", "reports on the site (tests/launch/doctor_test.sh)"),
    (r"^cmake --install", "tests/launch/install_test.sh installs and builds against the tree"),
    (r"^sbatch", "tests/launch/slurm_test.sh runs the Slurm scripts on a real one-node Slurm"),
]


def fail(message):
    print(f"readme_test: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def sh_blocks(text):
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


def commands(block):
    """Cuts a block into commands: continuation lines joined, here-documents
    kept with their command, comment-only lines dropped."""
    lines = block.splitlines()
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = line
        while command.endswith("\\") and i < len(lines):
            command = command[:-1] + " " + lines[i].strip()
            i += 1
        heredoc = re.search(r"<<\s*'?(\w+)'?", command)
        if heredoc:
            end = heredoc.group(1)
            body = []
            while i < len(lines) and lines[i] != end:
                body.append(lines[i])
                i += 1
            i += 1  # the terminator
            command = "\n".join([command] + body + [end])
        out.append(command)
    return out


def expected_output(command):
    """`echo ... | lockstep tokenize ...  # 1 15043 3186`: the comment."""
    if "lockstep tokenize" in command and "#" in command:
        return command.rsplit("#", 1)[1].strip()
    return None


def run_readme(source, scratch, lockstep):
    readme = (source / "README.md").read_text()
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name.startswith(".") or entry.name.startswith("build"):
            continue
        (scratch / entry.name).symlink_to(entry)
    env = dict(os.environ)
    env["PATH"] = f"{pathlib.Path(lockstep).parent}:{env.get('PATH', '')}"
    env["LOCKSTEP_HOST_SPEC"] = str(scratch / "host.json")  # uncalibrated, as on a new machine
    env["HOME"] = str(scratch)  # nothing written to the real home
    if os.geteuid() == 0:  # CI runs as root; Open MPI refuses that unless told
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    ran = skipped = 0
    for block in sh_blocks(readme):
        for command in commands(block):
            reason = next((why for pattern, why in SKIP if re.search(pattern, command)), None)
            if reason is None and "..." in command:
                reason = "an elided form (...)"
            if reason:
                print(f"readme_test: skip   {command.splitlines()[0][:90]}  ({reason})")
                skipped += 1
                continue
            print(f"readme_test: run    {command.splitlines()[0][:90]}", flush=True)
            done = subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=scratch, env=env,
                                  capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                fail(f"README command exited {done.returncode}:\n  {command}\n"
                     f"stdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-3000:]}")
            want = expected_output(command)
            if want is not None and done.stdout.strip() != want:
                fail(f"README says `{command}` prints {want!r}, it printed {done.stdout.strip()!r}")
            ran += 1
    if ran < 10:
        fail(f"only {ran} README commands ran: did the README's blocks change shape?")
    # What the commands promise to leave behind.
    for path in ["tiny.h5", "results.jsonl", "small.h5", "text-results.jsonl", "plan.json", "m.h5"]:
        if not (scratch / path).exists():
            fail(f"the README's commands did not write {path}")
    for line in (scratch / "text-results.jsonl").read_text().splitlines():
        if '"text":' not in line:
            fail(f"the text demo's result has no text: {line}")
    print(f"readme_test: {ran} README commands ran as written, {skipped} skipped")


def check_layout(source):
    readme = (source / "README.md").read_text()
    table = readme[readme.index("## Layout"):]
    listed = set(re.findall(r"^\| `([\w/]+)/` \|", table, flags=re.M))
    top = {p.name for p in source.iterdir()
           if p.is_dir() and not p.name.startswith(".") and not p.name.startswith("build")}
    runtime = {f"runtime/{p.name}" for p in (source / "runtime").iterdir() if p.is_dir()}
    want = (top - {"cmake", "runtime"}) | runtime
    if listed != want:
        fail(f"README layout table lists {sorted(listed)}; the tree has {sorted(want)} "
             f"(missing: {sorted(want - listed)}, gone: {sorted(listed - want)})")
    print(f"readme_test: the layout table matches the tree ({len(listed)} folders)")


def check_flags(source, lockstep):
    readme = (source / "README.md").read_text()
    help_text = subprocess.run([lockstep, "run", "--help"], capture_output=True, text=True,
                               check=True).stdout
    help_flags = dict(re.findall(r"^\s+(--[\w-]+)\s[^\n]*?(?:\[(\S+)\])?\s*$", help_text, flags=re.M))
    table = readme[readme.index("| flag | default | |"):]
    table = table[:table.index("\n\n")]
    rows = re.findall(r"^\| `(--[\w-]+)[^`]*` \| ([^|]+) \|", table, flags=re.M)
    if len(rows) < 8:
        fail(f"the README's run flag table has {len(rows)} rows, or is split by a blank line")
    for flag, default in rows:
        if flag not in help_flags:
            fail(f"the README's flag table has {flag}, which `lockstep run --help` does not")
        documented = default.strip()
        actual = help_flags[flag]
        if actual and documented not in ("off", actual):
            fail(f"README: {flag} defaults to {documented}, `lockstep run --help` says {actual}")
    docs = (source / "docs/batch-jobs.md").read_text() + (source / "docs/distributed.md").read_text()
    for flag in help_flags:
        if flag not in ("--help",) and f"`{flag}" not in docs:
            fail(f"`lockstep run {flag}` is in the help but not in docs/batch-jobs.md or "
                 "docs/distributed.md")
    print(f"readme_test: {len(rows)} flags of the README's table agree with `lockstep run --help`")


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    source = pathlib.Path(sys.argv[1]).resolve()
    lockstep = str(pathlib.Path(sys.argv[2]).resolve())
    scratch = pathlib.Path(sys.argv[3]).resolve()
    check_layout(source)
    check_flags(source, lockstep)
    run_readme(source, scratch, lockstep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
