"""Work dirs as MMEngine's Runner leaves them, written by hand, for the
report tests: the training session's scalars and log, the test session's
results."""
import json

# the timestamps of the two sessions of a fake work dir
TRAIN_TS, TEST_TS = '20260101_100000', '20260101_110000'


def write_session(work_dir, ts, lines=None, test=None, gpus=1):
    """One Runner session in ``work_dir/ts`` (a ``pathlib.Path``): training
    scalars (``lines``, dicts of ``scalars.json``) and log, or the test
    results (``test``, the metrics json) with the dumped config naming the
    tested checkpoint."""
    session = work_dir / ts
    (session / 'vis_data').mkdir(parents=True)
    (session / f'{ts}.log').write_text(f'    GPU number: {gpus}\n')
    if lines is not None:
        (session / 'vis_data' / 'scalars.json').write_text(''.join(
            json.dumps(line) + '\n' for line in lines))
    if test is not None:
        (session / f'{ts}.json').write_text(json.dumps(test))
        checkpoint = work_dir / 'iter_20.pth'
        (session / 'vis_data' /
         'config.py').write_text(f'load_from = {str(checkpoint)!r}\n')


def write_run(work_dir, config, lines=None, test=None, gpus=1):
    """A whole fake run in ``work_dir`` (a ``pathlib.Path``, created): the
    config that the Runner dumps at its top (``config``, the text of
    ``config.py``), a training session (:func:`write_session`) and, with
    ``test``, a test session.

    Returns:
        str: The work dir.
    """
    work_dir.mkdir(parents=True)
    (work_dir / 'config.py').write_text(config)
    write_session(work_dir, TRAIN_TS, lines=lines, gpus=gpus)
    if test is not None:
        write_session(work_dir, TEST_TS, test=test)
    return str(work_dir)
