"""tools/test.py on a trained checkpoint: metrics, --out and --show-dir."""
import pickle


def test_metrics_out_and_show_dir(run_tool, tiny_cls_checkpoint, tmp_path):
    config, checkpoint = tiny_cls_checkpoint
    out = tmp_path / 'preds.pkl'
    show_dir = tmp_path / 'vis'
    result = run_tool('test.py', config, checkpoint, '--work-dir',
                      tmp_path / 'work_dir', '--out', out, '--show-dir',
                      show_dir)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert f'Load checkpoint from {checkpoint}' in output
    assert 'accuracy/top1:' in output
    predictions = pickle.loads(out.read_bytes())
    assert len(predictions) == 4
    assert {'pred_label', 'pred_score', 'gt_label'} <= set(predictions[0])
    # mmpretrain's hook names a drawing <image name>_<step>.png.
    drawn = sorted(path.name for path in show_dir.iterdir())
    assert drawn == [f'{i}.png_0.png' for i in range(4)]
