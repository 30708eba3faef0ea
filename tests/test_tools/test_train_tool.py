"""tools/train.py resumes a Runner checkpoint (weights-only torch.load)."""
import shutil


def test_auto_resume(run_tool, tiny_cls_checkpoint, tiny_cls_config, tmp_path):
    _, checkpoint = tiny_cls_checkpoint
    work_dir = tmp_path / 'work_dir'
    work_dir.mkdir()
    shutil.copy(checkpoint, work_dir / 'iter_2.pth')
    # How CheckpointHook records the latest checkpoint for --resume.
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_2.pth'))
    result = run_tool('train.py', tiny_cls_config, '--work-dir', work_dir,
                      '--resume')
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert 'resumed epoch: 0, iter: 2' in output
    assert 'Iter(train) [1/4]' not in output
    assert 'Iter(train) [3/4]' in output
    assert (work_dir / 'iter_4.pth').is_file()
