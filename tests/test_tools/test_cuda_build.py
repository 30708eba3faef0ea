"""tools/misc/cuda_build.py: the checks around a CUDA build of mmcv.

A fake ``nvcc`` (a shell script printing a chosen ``--version``) stands in
for a toolkit; the real build is recorded in docs/get_started.md ("GPU
cluster").
"""
import os
import os.path as osp
import stat
import subprocess
import sys

import pytest
import torch

from mtl_pvt.testing.tiny_mtl import REPO

SCRIPT = osp.join(REPO, 'tools', 'misc', 'cuda_build.py')
TORCH_CUDA = torch.version.cuda  # '13.0' for the pinned build


def fake_toolkit(root, release):
    """A folder laid out as a CUDA toolkit whose nvcc says ``release``."""
    os.makedirs(osp.join(root, 'bin'))
    os.makedirs(osp.join(root, 'include'))
    open(osp.join(root, 'include', 'cuda_runtime.h'), 'w').close()
    nvcc = osp.join(root, 'bin', 'nvcc')
    with open(nvcc, 'w') as f:
        f.write('#!/bin/sh\necho "nvcc: NVIDIA (R) Cuda compiler driver"\n'
                f'echo "Cuda compilation tools, release {release}, '
                f'V{release}.88"\n')
    os.chmod(nvcc, os.stat(nvcc).st_mode | stat.S_IEXEC)
    return str(root)


def prepare(tmp_path, cuda_home, **env):
    run_env = dict(os.environ, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='8.0')
    run_env.pop('CUDA_HOME', None)
    run_env.update(env)
    return subprocess.run(
        [sys.executable, SCRIPT, 'prepare', '--cuda-home', cuda_home],
        capture_output=True,
        text=True,
        env=run_env)


needs_cuda_torch = pytest.mark.skipif(
    not TORCH_CUDA, reason='the pinned torch is a CUDA build; this is not')


@needs_cuda_torch
def test_a_matching_nvcc_gives_its_cuda_home(tmp_path):
    home = fake_toolkit(tmp_path / 'cuda', TORCH_CUDA)
    result = prepare(tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == home  # stdout: the CUDA_HOME only


@needs_cuda_torch
def test_another_major_version_is_refused_with_both_versions(tmp_path):
    major = int(TORCH_CUDA.split('.')[0])
    home = fake_toolkit(tmp_path / 'cuda', f'{major - 1}.8')
    result = prepare(tmp_path, home)
    assert result.returncode == 1 and result.stdout == ''
    assert f'is CUDA {major - 1}.8, but torch was built for CUDA ' \
        f'{TORCH_CUDA}' in result.stderr
    assert 'TORCH_INDEX_URL' in result.stderr


@needs_cuda_torch
def test_another_minor_version_is_a_note(tmp_path):
    major, minor = map(int, TORCH_CUDA.split('.')[:2])
    home = fake_toolkit(tmp_path / 'cuda', f'{major}.{minor + 1}')
    result = prepare(tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert 'same major version' in result.stderr


def test_a_build_without_the_cuda_ops_is_refused(tmp_path):
    home = fake_toolkit(tmp_path / 'cuda', TORCH_CUDA or '13.0')
    result = prepare(tmp_path, home, FORCE_CUDA='0')
    assert result.returncode == 1
    assert ('FORCE_CUDA' in result.stderr or 'CPU-only' in result.stderr)
    if TORCH_CUDA:
        result = prepare(tmp_path, home, TORCH_CUDA_ARCH_LIST='')
        assert result.returncode == 1
        assert 'TORCH_CUDA_ARCH_LIST' in result.stderr


def test_a_cuda_home_without_nvcc_is_refused(tmp_path):
    result = prepare(tmp_path, str(tmp_path))
    assert result.returncode == 1
    assert 'has no bin/nvcc' in result.stderr or 'CPU-only' in result.stderr


def test_verify_refuses_a_cpu_only_mmcv():
    """This machine's mmcv is built with its CPU ops only."""
    result = subprocess.run([sys.executable, SCRIPT, 'verify'],
                            capture_output=True,
                            text=True)
    from mmcv.ops import get_compiling_cuda_version
    if get_compiling_cuda_version() == 'not available':
        assert result.returncode == 1
        assert 'compiled without CUDA' in result.stderr
    else:  # a GPU build (make install GPU=1)
        assert result.returncode == 0, result.stderr


def test_nvcc_wheels_follow_torch_cuda_naming():
    sys.path.insert(0, osp.dirname(SCRIPT))
    try:
        from cuda_build import nvcc_wheels
    finally:
        sys.path.pop(0)
    assert nvcc_wheels((13, 0)) == [
        'nvidia-cuda-nvcc==13.0.*', 'nvidia-cuda-crt==13.0.*',
        'nvidia-nvvm==13.0.*', 'nvidia-cuda-cccl==13.0.*',
        'nvidia-cuda-runtime==13.0.*'
    ]
    assert nvcc_wheels((12, 6))[0] == 'nvidia-cuda-nvcc-cu12==12.6.*'


def test_assemble_cuda_home_lays_out_wheels_as_a_toolkit(tmp_path):
    sys.path.insert(0, osp.dirname(SCRIPT))
    try:
        from cuda_build import assemble_cuda_home
    finally:
        sys.path.pop(0)
    # two wheels' folders, as NVIDIA's cu12 wheels install them
    nvcc, runtime = tmp_path / 'cuda_nvcc', tmp_path / 'cuda_runtime'
    for path in (nvcc / 'bin' / 'nvcc', nvcc / 'nvvm' / 'libdevice',
                 runtime / 'include' / 'cuda_runtime.h',
                 runtime / 'lib' / 'libcudart.so.12'):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(path.name)
    home = assemble_cuda_home(str(tmp_path / 'home'), [nvcc, runtime])
    for rel in ('bin/nvcc', 'include/cuda_runtime.h', 'lib64/libcudart.so',
                'lib64/libcudart.so.12', 'nvvm/libdevice'):
        assert osp.exists(osp.join(home, rel)), rel
    assert os.readlink(osp.join(home, 'lib64', 'libcudart.so')) == \
        'libcudart.so.12'
