"""Checks around a CUDA build of mmcv's ops (``make install GPU=1``).

``prepare`` (before compiling) prints the ``CUDA_HOME`` to build with:
the one given, else the toolkit of ``nvcc`` on ``PATH``, else NVIDIA's
nvcc wheels for torch's CUDA version, installed into the environment and
laid out as a toolkit (``<venv>/cuda``). It refuses, naming both
versions, an nvcc whose CUDA major version is not torch's (torch's own
rule: a minor difference is binary compatible, and it only warns), a torch
without CUDA, and a build that would leave the CUDA ops out (mmcv's
``setup.py`` compiles them only with ``FORCE_CUDA=1`` or a visible GPU).

``verify`` (after installing) checks that ``mmcv.ops`` was compiled with
CUDA, and where a GPU is present runs ``nms`` on it against the CPU.

Usage::

    python tools/misc/cuda_build.py prepare [--cuda-home DIR]
    python tools/misc/cuda_build.py verify
"""
import argparse
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import sysconfig
from typing import Optional, Tuple


class CudaBuildError(RuntimeError):
    """A CUDA build of mmcv that cannot work, with the reason."""


def nvcc_version(nvcc: str) -> Tuple[int, int]:
    """``(major, minor)`` of ``nvcc --version`` ("release 13.0, ...")."""
    try:
        out = subprocess.run([nvcc, '--version'],
                             capture_output=True,
                             text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise CudaBuildError(f'{nvcc} --version failed: {err}') from err
    match = re.search(r'release (\d+)\.(\d+)', out)
    if match is None:
        raise CudaBuildError(
            f'{nvcc} --version printed no "release X.Y":\n{out}')
    return int(match.group(1)), int(match.group(2))


def torch_cuda_version() -> Tuple[int, int]:
    """``(major, minor)`` of the CUDA that torch was built for."""
    import torch
    if not torch.version.cuda:
        raise CudaBuildError(
            f'torch {torch.__version__} is a CPU-only build: it cannot '
            'compile CUDA ops. Install a CUDA build of torch first (make '
            'install GPU=1 TORCH_INDEX_URL=https://download.pytorch.org/'
            'whl/cu126, for example)')
    major, minor = torch.version.cuda.split('.')[:2]
    return int(major), int(minor)


def check_versions(nvcc: str, torch_cuda: Tuple[int, int]) -> str:
    """Raise on a major mismatch; a note on a minor one (else '')."""
    got = nvcc_version(nvcc)
    want = '.'.join(map(str, torch_cuda))
    have = '.'.join(map(str, got))
    if got[0] != torch_cuda[0]:
        raise CudaBuildError(
            f'nvcc {nvcc} is CUDA {have}, but torch was built for CUDA '
            f'{want}: mmcv\'s CUDA ops would not compile against it (torch '
            'refuses a different major version). Either point CUDA_HOME at '
            f'a CUDA {torch_cuda[0]}.x toolkit, leave CUDA_HOME unset and '
            f'take nvcc off PATH (NVIDIA\'s nvcc wheels for CUDA {want} are '
            'then installed into the environment), or install the torch '
            f'build for CUDA {have} (TORCH_INDEX_URL).')
    if got != torch_cuda:
        return (f'note: nvcc is CUDA {have}, torch CUDA {want}: the same '
                'major version, which torch accepts (it warns)')
    return ''


def check_ops_will_build(env=os.environ) -> None:
    """mmcv's ``setup.py`` compiles the CUDA ops only with
    ``FORCE_CUDA=1`` or a GPU it can see; without a GPU,
    ``TORCH_CUDA_ARCH_LIST`` must say which architectures to build."""
    import torch
    gpu = torch.cuda.is_available()
    if env.get('FORCE_CUDA', '0') != '1' and not gpu:
        raise CudaBuildError(
            'no GPU is visible and FORCE_CUDA is not 1: mmcv would build '
            'its CPU ops only (the first nms on a CUDA tensor would fail in '
            'the first validation). Set FORCE_CUDA=1')
    if env.get('MMCV_WITH_OPS', '1') != '1':
        raise CudaBuildError('MMCV_WITH_OPS is not 1: mmcv would be built '
                             'without any compiled op')
    if not gpu and not env.get('TORCH_CUDA_ARCH_LIST'):
        raise CudaBuildError(
            'no GPU is visible to pick the architecture: set '
            'TORCH_CUDA_ARCH_LIST (for example "8.0;9.0": Ampere, Hopper)')


def _venv_nvidia_dirs() -> list:
    """The ``site-packages/nvidia/*`` folders of this environment."""
    root = osp.join(sysconfig.get_paths()['purelib'], 'nvidia')
    if not osp.isdir(root):
        return []
    return [osp.join(root, d) for d in sorted(os.listdir(root))]


def nvcc_wheels(torch_cuda: Tuple[int, int]) -> list:
    """NVIDIA's pip packages of nvcc and the headers it needs for
    ``torch_cuda`` (CUDA 12 names them ``-cu12``; CUDA 13 splits the
    compiler into crt and nvvm and drops the suffix)."""
    major, minor = torch_cuda
    series = f'=={major}.{minor}.*'
    if major >= 13:
        return [
            f'nvidia-cuda-nvcc{series}', f'nvidia-cuda-crt{series}',
            f'nvidia-nvvm{series}', f'nvidia-cuda-cccl{series}',
            f'nvidia-cuda-runtime{series}'
        ]
    return [
        f'nvidia-cuda-nvcc-cu{major}{series}',
        f'nvidia-cuda-cccl-cu{major}{series}',
        f'nvidia-cuda-runtime-cu{major}{series}'
    ]


def assemble_cuda_home(dest: str, sources: list) -> str:
    """Lay ``sources`` (folders with ``bin``, ``include``, ``lib``,
    ``nvvm``) out as one toolkit at ``dest``, by symbolic links, and give
    the linker its unversioned ``libcudart.so``."""
    for sub in ('bin', 'include', 'lib64', 'nvvm'):
        os.makedirs(osp.join(dest, sub), exist_ok=True)
    for src in sources:
        for sub, target in (('bin', 'bin'), ('include', 'include'),
                            ('lib', 'lib64'), ('nvvm', 'nvvm')):
            folder = osp.join(src, sub)
            if not osp.isdir(folder):
                continue
            for name in os.listdir(folder):
                link = osp.join(dest, target, name)
                if not osp.lexists(link):
                    os.symlink(osp.join(folder, name), link)
    lib = osp.join(dest, 'lib64')
    versioned = sorted(
        n for n in os.listdir(lib) if n.startswith('libcudart.so.'))
    if versioned and not osp.lexists(osp.join(lib, 'libcudart.so')):
        os.symlink(versioned[0], osp.join(lib, 'libcudart.so'))
    return dest


def pip_cuda_home(torch_cuda: Tuple[int, int], dest: str) -> str:
    """Install the nvcc wheels for ``torch_cuda`` into this environment
    and lay them out (with torch's own CUDA headers and libraries) as a
    toolkit at ``dest``."""
    packages = nvcc_wheels(torch_cuda)
    print('installing', ' '.join(packages), file=sys.stderr)
    subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--no-deps'] + packages,
        check=True,
        stdout=sys.stderr)  # stdout is the CUDA_HOME only
    if osp.isdir(dest):
        shutil.rmtree(dest)
    return assemble_cuda_home(dest, _venv_nvidia_dirs())


def find_cuda_home(cuda_home: Optional[str], torch_cuda: Tuple[int, int],
                   dest: str) -> str:
    """The toolkit to build with (see the module's docstring)."""
    if cuda_home:
        if not osp.isfile(osp.join(cuda_home, 'bin', 'nvcc')):
            raise CudaBuildError(f'CUDA_HOME={cuda_home} has no bin/nvcc')
        return cuda_home
    nvcc = shutil.which('nvcc')
    if nvcc:
        # nvcc on PATH may be a wrapper script: the toolkit is the folder
        # whose include/ has the runtime's headers
        for home in (osp.dirname(osp.dirname(osp.realpath(nvcc))),
                     '/usr/local/cuda'):
            if osp.isfile(osp.join(home, 'include', 'cuda_runtime.h')) and \
                    osp.isfile(osp.join(home, 'bin', 'nvcc')):
                return home
        raise CudaBuildError(
            f'nvcc is on PATH ({nvcc}), but no toolkit with its headers was '
            'found next to it or in /usr/local/cuda: set CUDA_HOME')
    return pip_cuda_home(torch_cuda, dest)


def prepare(args) -> int:
    torch_cuda = torch_cuda_version()
    check_ops_will_build()
    dest = osp.join(sys.prefix, 'cuda')
    cuda_home = find_cuda_home(
        args.cuda_home or os.environ.get('CUDA_HOME'), torch_cuda, dest)
    note = check_versions(osp.join(cuda_home, 'bin', 'nvcc'), torch_cuda)
    if note:
        print(note, file=sys.stderr)
    print(cuda_home)
    return 0


def verify(args) -> int:
    """mmcv.ops compiled with CUDA; nms on the GPU equals the CPU's."""
    import torch
    from mmcv.ops import get_compiling_cuda_version, nms
    version = get_compiling_cuda_version()
    if not re.match(r'\d+\.\d+', str(version)):
        raise CudaBuildError(
            f'mmcv.ops was compiled without CUDA ({version!r}): a GPU run '
            'fails at the first nms on a CUDA tensor. Rebuild with make '
            'install GPU=1 (pip may have reused a cached CPU-only wheel: '
            'the GPU profile builds with --no-cache-dir)')
    print(f'mmcv.ops compiled with CUDA {version}')
    if not torch.cuda.is_available():
        print('no GPU here: nms not run on one')
        return 0
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(64, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(64, 2, generator=g) * 20], 1)
    scores = torch.rand(64, generator=g)
    _, keep_cpu = nms(boxes, scores, 0.5)
    _, keep_gpu = nms(boxes.cuda(), scores.cuda(), 0.5)
    if not torch.equal(keep_cpu, keep_gpu.cpu()):
        raise CudaBuildError(
            'nms on the GPU keeps other boxes than on the '
            f'CPU: {keep_gpu.tolist()} vs {keep_cpu.tolist()}')
    print(f'nms on {torch.cuda.get_device_name()} equals the CPU\'s')
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('prepare', help='check, then print CUDA_HOME')
    p.add_argument('--cuda-home', help='the toolkit (default: $CUDA_HOME)')
    sub.add_parser('verify', help='check the installed mmcv.ops')
    args = parser.parse_args(argv)
    try:
        return dict(prepare=prepare, verify=verify)[args.command](args)
    except CudaBuildError as err:
        print(f'cuda_build.py {args.command}: {err}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
