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
