"""Start ``tools/train.py`` runs as forks of one process that has already
imported the libraries, so that a test can start (and kill) many runs.

Importing torch, mmdet, mmseg and mmpretrain takes most of a tiny demo
run's time. This server imports them once (what ``tools/train.py``
imports, nothing is computed, so forking is safe) and answers one JSON
request per line on stdin:

- ``{"op": "start", "argv": [...], "cwd": ..., "log": ...}``: fork a child
  that runs ``argv[0]`` as ``__main__`` (``runpy``) with ``sys.argv =
  argv`` in ``cwd``, its stdout and stderr in ``log``; answers its pid. The
  child is a process of its own: a SIGKILL ends it at that moment.
- ``{"op": "wait", "pid": ...}``: wait for the child; answers its exit code
  (``-9`` for a SIGKILL).

A child formats its config text once, however often MMEngine asks for it
(:func:`mtl_pvt.testing.config_text.memoize_config_formatting`: same
output, a run's every checkpoint otherwise formats it anew with yapf).

Use it through :class:`mtl_pvt.testing.demo_runs.TrainForkServer`.
"""
import json
import os
import runpy
import sys
import traceback


def _child(request: dict) -> None:
    code = 1
    try:
        os.chdir(request['cwd'])
        fd = os.open(request['log'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.argv = list(request['argv'])
        runpy.run_path(sys.argv[0], run_name='__main__')
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    # what tools/train.py imports
    import mtl_pvt.apis  # noqa: F401 (the runner, the load check)
    from mtl_pvt.testing.config_text import memoize_config_formatting
    from mtl_pvt.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    # each run formats its config text once, not once per checkpoint
    memoize_config_formatting()
    print('ready', flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request['op'] == 'start':
            pid = os.fork()
            if pid == 0:
                _child(request)
            print(pid, flush=True)
        elif request['op'] == 'wait':
            _, status = os.waitpid(request['pid'], 0)
            print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == '__main__':
    main()
