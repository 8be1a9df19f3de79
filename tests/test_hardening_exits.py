"""How a run's process ends decides its status, whatever else the process installed (issue 8, items 4, 9-11).

Every test runs a real Python process and reads the run back through ``runlane.Api``: the exit paths under
test (atexit, signals, ``os._exit`` in multiprocessing workers, an interactive prompt) only exist there.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import runlane

from .conftest import run_script, script_env


def run_file(tmp_path: Path, code: str, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script file (multiprocessing's spawn and forkserver import the main module by path)."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=script_env(store),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def statuses(store: Path, project: str) -> dict[str | None, tuple[str, str | None]]:
    with runlane.Api(store) as api:
        return {r.name: (r.status, r.status_reason) for r in api.runs(project=project)}


# -- item 4: a forked child never inherits a held run lock --------------------------------------------------

FORK_WHILE_LOGGING = """
    import json, multiprocessing, os, sys, threading, time
    import runlane

    CHILDREN = 40
    run = runlane.init(project="forks")
    stop = threading.Event()

    def hammer():
        step = 0
        while not stop.is_set():  # holds the run lock most of the time, so forks land while it is held
            run.log({"parent": 1.0}, step=step)
            step += 1

    def child_logs(i):
        run.log({"child": float(i)}, step=10_000_000 + i)

    class Forked:  # a child from os.fork, waited for like a multiprocessing.Process
        def __init__(self, i):
            self.pid = os.fork()
            if self.pid == 0:
                child_logs(i)
                os._exit(0)
            self.exitcode = None

        def is_alive(self):
            if self.exitcode is None and os.waitpid(self.pid, os.WNOHANG)[0] == self.pid:
                self.exitcode = 0
            return self.exitcode is None

        def kill(self):
            os.kill(self.pid, 9)

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    children = []
    for i in range(CHILDREN):
        if sys.argv[1] == "os.fork":
            children.append(Forked(i))
        else:
            process = multiprocessing.get_context("fork").Process(target=child_logs, args=(i,))
            process.start()
            children.append(process)
    deadline = time.monotonic() + 30  # a child that logs one point takes milliseconds; a hung one, forever
    while any(child.is_alive() for child in children) and time.monotonic() < deadline:
        time.sleep(0.01)
    hung = [i for i, child in enumerate(children) if child.is_alive()]
    for i in hung:
        children[i].kill()
    stop.set()
    thread.join()
    run.finish()
    print(json.dumps({"hung": hung}))
"""


@pytest.mark.parametrize("fork", ["os.fork", "multiprocessing-fork"])
def test_children_forked_while_a_thread_logs_never_hang_and_their_points_land(
    store_dir: Path, tmp_path: Path, fork: str
) -> None:
    result = run_file(tmp_path, FORK_WHILE_LOGGING, store_dir, fork)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"hung": []}
    with runlane.Api(store_dir) as api:
        info = api.runs(project="forks")[0]
        assert info.status == "finished"
        assert sorted(p.value for p in api.history(info.id, "child")) == [float(i) for i in range(40)]


# -- item 9: runs of multiprocessing workers end as their target did, with every start method ----------------

WORKERS = """
    import multiprocessing, sys, time
    import runlane

    def worker(how, ready):
        run = runlane.init(project="workers", name=how)
        run.log({"x": 1.0})
        if how == "raise":
            raise ValueError("boom")
        if how == "exit":
            sys.exit(3)
        if how == "terminated":
            ready.set()
            time.sleep(120)

    if __name__ == "__main__":
        context = multiprocessing.get_context(sys.argv[1])
        for how in ("return", "raise", "exit", "terminated"):
            ready = context.Event()
            process = context.Process(target=worker, args=(how, ready))
            process.start()
            if how == "terminated":
                assert ready.wait(60), "the worker never started its run"
                process.terminate()
            process.join(120)
            print(how, process.exitcode, flush=True)
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_worker_runs_end_as_the_readme_says_with_every_start_method(
    store_dir: Path, tmp_path: Path, method: str
) -> None:
    result = run_file(tmp_path, WORKERS, store_dir, method)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["return", "0", "raise", "1", "exit", "3", "terminated", "-15"], result.stderr
    assert statuses(store_dir, "workers") == {
        "return": ("finished", None),
        "raise": ("failed", "ValueError: boom"),
        "exit": ("failed", "sys.exit(3)"),
        "terminated": ("killed", "received SIGTERM"),
    }


# -- item 10: what the process survived does not decide how it ends -----------------------------------------

SURVIVED = {
    "ctrl-c-handled": """
        import os, signal, time
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
        except KeyboardInterrupt:
            pass
    """,
    "sigterm-handled-by-the-user": """
        import os
        os.kill(os.getpid(), signal.SIGTERM)  # the user's handler (installed before init(), chained) deals with it
        assert handled.wait(30)
    """,
    "sys-exit-caught": """
        import sys
        try:
            sys.exit(3)
        except SystemExit:
            pass
    """,
    "exception-shown-by-a-framework": """
        import sys
        try:
            raise ValueError("handled")
        except ValueError:
            sys.excepthook(*sys.exc_info())  # what a GUI or server loop does before it carries on
    """,
    "sys-exit-in-a-thread": """
        import sys, threading
        thread = threading.Thread(target=sys.exit, args=(3,))  # ends that thread only
        thread.start()
        thread.join()
    """,
}


@pytest.mark.parametrize("survived", list(SURVIVED))
def test_what_the_process_survived_does_not_decide_the_status(store_dir: Path, survived: str) -> None:
    code = f"""
import signal, threading
handled = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: handled.set())  # runlane chains it
import runlane
first = runlane.init(project="survived", name="first")
{textwrap.dedent(SURVIVED[survived])}
first.log({{"x": 1.0}})
second = runlane.init(project="survived", name="second")
second.log({{"x": 2.0}})
"""
    result = run_script(code, store_dir)
    assert result.returncode == 0, result.stderr
    assert statuses(store_dir, "survived") == {"first": ("finished", None), "second": ("finished", None)}


def run_interactive(store: Path, lines: list[str]) -> subprocess.CompletedProcess[str]:
    """Feed ``lines`` to ``python -i`` through stdin, as a user typing at the prompt."""
    return subprocess.run(
        [sys.executable, "-i"],
        input="\n".join(lines) + "\n",
        env=script_env(store),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_exception_at_an_interactive_prompt_does_not_decide_the_status(store_dir: Path) -> None:
    result = run_interactive(
        store_dir,
        [
            "import runlane",
            "first = runlane.init(project='repl', name='first')",
            "1 / 0",
            "second = runlane.init(project='repl', name='second')",
            "second.log({'x': 1.0})",
        ],
    )
    assert result.returncode == 0, result.stderr
    assert "ZeroDivisionError" in result.stderr
    assert statuses(store_dir, "repl") == {"first": ("finished", None), "second": ("finished", None)}


def test_an_interactive_session_ended_by_exit_with_a_code_fails_the_run(store_dir: Path) -> None:
    result = run_interactive(
        store_dir, ["import runlane", "run = runlane.init(project='repl', name='run')", "1 / 0", "exit(4)"]
    )
    assert result.returncode == 4, result.stderr
    assert statuses(store_dir, "repl") == {"run": ("failed", "sys.exit(4)")}


def test_an_exception_escaping_the_script_of_python_i_leaves_the_ending_to_the_session(store_dir: Path) -> None:
    # python -i keeps the process alive at a prompt after the script's exception; the session ended normally.
    result = subprocess.run(
        [sys.executable, "-i", "-c", "import runlane; runlane.init(project='repl', name='run'); raise SystemExit(2)"],
        input="",
        env=script_env(store_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert statuses(store_dir, "repl") == {"run": ("finished", None)}


# -- item 11: every ending in the README's table, whatever else the process installed -------------------------

# CPython 3.10 and 3.11 tell no Python code the code of a SystemExit that leaves the main program without
# passing through a function runlane wraps (see docs/architecture.md, "How a process ends"): there such an
# exit ends the run as exit code 0 would. From 3.12 on, sys.monitoring sees every exit.
UNSEEN_EXIT = ("failed", "sys.exit(2)") if sys.version_info >= (3, 12) else ("finished", None)

ENDINGS = {
    "library-replaced-excepthook": (
        "import sys\nsys.excepthook = lambda *exc: print('library hook', file=sys.stderr)\nraise ValueError('boom')",
        1,
        ("failed", "ValueError: boom"),
    ),
    "raise-system-exit": ("raise SystemExit(2)", 2, UNSEEN_EXIT),
    "builtin-exit": ("exit(2)", 2, ("failed", "sys.exit(2)")),
    "exit-imported-before-runlane": ("early_exit(2)", 2, UNSEEN_EXIT),
    "exit-imported-after-init": ("from sys import exit as late_exit\nlate_exit(2)", 2, ("failed", "sys.exit(2)")),
    "raise-system-exit-0": ("raise SystemExit(0)", 0, ("finished", None)),
    "sys-exit-message": ("import sys\nsys.exit('no data')", 1, ("failed", "sys.exit('no data')")),
    "library-sigterm-handler-exits-0": (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(30)",
        0,
        ("killed", "received SIGTERM"),
    ),
    "library-sigterm-handler-raises-the-default": (
        "import os, signal, time\n"
        "def on_term(signum, frame):\n"
        "    signal.signal(signum, signal.SIG_DFL)\n"
        "    os.kill(os.getpid(), signum)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(30)",
        -signal.SIGTERM,
        ("killed", "received SIGTERM"),
    ),
}


@pytest.mark.parametrize("case", list(ENDINGS))
def test_every_ending_holds_whatever_the_process_installed(store_dir: Path, case: str) -> None:
    body, exit_code, expected = ENDINGS[case]
    code = "from sys import exit as early_exit\nimport runlane\nrun = runlane.init(project='endings', name='run')\n"
    code += "run.log({'x': 1.0})\n" + body + "\n"
    result = run_script(code, store_dir)
    assert result.returncode == exit_code, result.stderr
    assert statuses(store_dir, "endings") == {"run": expected}


# The store's write lock, held by the script itself, keeps the writer waiting inside finish() or init() for as
# long as it takes a watcher thread to see the main thread there and send SIGTERM.
SIGTERM_WHILE_WAITING = """
    import os, signal, sqlite3, sys, threading, time
    import runlane

    # Where the main thread waits for the locked store: init() in its lifecycle call; finish() while it
    # applies the journal's backlog, before it settles the run's status.
    WAITS_IN = {"init": ("init", "call"), "finish": ("finish", "catch_up")}

    def signal_when_main_waits_in(functions, lock):
        main = threading.main_thread().ident
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            frame = sys._current_frames().get(main)
            names = []
            while frame is not None:
                names.append(frame.f_code.co_name)
                frame = frame.f_back
            if all(function in names for function in functions):
                os.kill(os.getpid(), signal.SIGTERM)
                break
            time.sleep(0.01)
        lock.rollback()  # let the store go on

    lock = sqlite3.connect(os.path.join(os.environ["RUNLANE_DIR"], "runlane.db"), check_same_thread=False)
    if sys.argv[1] == "finish":
        run = runlane.init(project="waiting", name="run")
    lock.execute("BEGIN IMMEDIATE")  # from here the drain cannot apply anything: finish() has a backlog
    if sys.argv[1] == "finish":
        for step in range(1000):
            run.log({"x": float(step)})
    watcher = threading.Thread(target=signal_when_main_waits_in, args=(WAITS_IN[sys.argv[1]], lock))
    watcher.start()
    if sys.argv[1] == "finish":
        run.finish()
    else:
        run = runlane.init(project="waiting", name="run")
    print("the signal was not delivered", flush=True)
"""


@pytest.mark.parametrize("during", ["finish", "init"])
def test_sigterm_while_init_or_finish_waits_for_the_store_ends_killed(
    store_dir: Path, tmp_path: Path, during: str
) -> None:
    runlane.init(project="seed", dir=store_dir).finish()  # the store exists, so the script can lock it
    result = run_file(tmp_path, SIGTERM_WHILE_WAITING, store_dir, during)
    assert result.returncode == -signal.SIGTERM, (result.stdout, result.stderr)
    assert statuses(store_dir, "waiting") == {"run": ("killed", "received SIGTERM")}
    if during == "finish":
        with runlane.Api(store_dir) as api:
            run = api.runs(project="waiting")[0]
            assert len(api.history(run.id, "x")) == 1000  # the drain the signal arrived in was completed
