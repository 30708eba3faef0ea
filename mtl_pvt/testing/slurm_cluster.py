"""A one-node Slurm cluster on this machine, for tests.

Debian's ``slurmctld`` and ``slurmd`` (``tools/misc/install_slurm.sh``
installs them where it can) run as root with a ``slurm.conf`` of their own
in a temporary folder: one node (this machine, all its CPUs), one
partition, no accounting, ``auth/none`` (no munge key to share), ports
chosen free. The clients (``sbatch``, ``squeue``, ``scancel``,
``scontrol``) find it through ``SLURM_CONF`` in :meth:`SlurmCluster.env`.
Nothing outside the folder is written, and the daemons stop with the
context.

Examples:
    >>> with SlurmCluster(tmp_path) as cluster:
    ...     subprocess.run(['sbatch', 'job.sh'], env=cluster.env())
"""
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import time
from typing import Dict, Optional

DAEMONS = ('slurmctld', 'slurmd')
CLIENTS = ('sbatch', 'squeue', 'scancel', 'scontrol', 'srun', 'sinfo')
PARTITION = 'cpu'


def unavailable() -> Optional[str]:
    """Why a cluster cannot start here, or None."""
    if os.geteuid() != 0:
        return 'the Slurm daemons of a test cluster run as root'
    missing = [p for p in DAEMONS + CLIENTS if shutil.which(p) is None]
    if missing:
        return (f'Slurm is not installed ({", ".join(missing)} missing; '
                'tools/misc/install_slurm.sh installs it as root)')
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _config(root: str, node: str, cpus: int) -> str:
    ctld, slurmd = _free_port(), _free_port()
    return '\n'.join([
        'ClusterName=mtlpvttest',
        f'SlurmctldHost={node}(127.0.0.1)',
        f'SlurmctldPort={ctld}',
        f'SlurmdPort={slurmd}',
        'AuthType=auth/none',
        'CredType=cred/none',
        'SlurmUser=root',
        'SlurmdUser=root',
        f'StateSaveLocation={root}/state',
        f'SlurmdSpoolDir={root}/spool',
        f'SlurmctldPidFile={root}/slurmctld.pid',
        f'SlurmdPidFile={root}/slurmd.pid',
        f'SlurmctldLogFile={root}/slurmctld.log',
        f'SlurmdLogFile={root}/slurmd.log',
        'ProctrackType=proctrack/linuxproc',
        'TaskPlugin=task/none',
        'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_CPU',
        'MpiDefault=none',
        'ReturnToService=2',
        'JobCompType=jobcomp/none',
        'AccountingStorageType=accounting_storage/none',
        'SlurmctldTimeout=30',
        'SlurmdTimeout=30',
        'KillWait=30',
        f'NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN',
        f'PartitionName={PARTITION} Nodes=ALL Default=YES '
        'MaxTime=INFINITE State=UP',
    ]) + '\n'


class SlurmCluster:
    """Start ``slurmctld`` and ``slurmd`` on this machine; stop them on
    exit.

    Args:
        root (str): A folder of the cluster's own (config, state, logs).
        timeout (float): Seconds to wait for the node to be idle.
            Defaults to 60.
    """

    def __init__(self, root: str, timeout: float = 60.):
        self.root = str(root)
        self.conf = osp.join(self.root, 'slurm.conf')
        self.partition = PARTITION
        self.timeout = timeout

    def env(self, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """An environment whose Slurm clients talk to this cluster."""
        env = dict(os.environ if base is None else base)
        env['SLURM_CONF'] = self.conf
        return env

    def run(self, *cmd: str) -> str:
        """Run a Slurm client; its standard output."""
        result = subprocess.run(
            list(cmd), env=self.env(), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f'{" ".join(cmd)} failed: {result.stderr}')
        return result.stdout

    def job_state(self, job_id: str) -> Dict[str, str]:
        """``scontrol show job``'s fields (``JobState``, ``Restarts``...).
        """
        fields = {}
        for word in self.run('scontrol', 'show', 'job', str(job_id)).split():
            key, _, value = word.partition('=')
            fields.setdefault(key, value)
        return fields

    def logs(self) -> str:
        texts = []
        for name in ('slurmctld.log', 'slurmd.log'):
            path = osp.join(self.root, name)
            if osp.isfile(path):
                with open(path) as f:
                    texts.append(f'--- {name}\n' + f.read()[-3000:])
        return '\n'.join(texts)

    def __enter__(self) -> 'SlurmCluster':
        for folder in ('state', 'spool'):
            os.makedirs(osp.join(self.root, folder), exist_ok=True)
        node = socket.gethostname().split('.')[0]
        with open(self.conf, 'w') as f:
            f.write(_config(self.root, node, os.cpu_count() or 1))
        env = self.env()
        for daemon in DAEMONS:
            subprocess.run([daemon, '-f', self.conf],
                           env=env,
                           check=True,
                           capture_output=True)
        deadline = time.monotonic() + self.timeout
        state = ''
        while time.monotonic() < deadline:
            result = subprocess.run(['sinfo', '-h', '-o', '%T'],
                                    env=env,
                                    capture_output=True,
                                    text=True)
            state = result.stdout.strip()
            if state == 'idle':
                return self
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f'the test cluster\'s node is {state!r}, not '
                           f'idle, after {self.timeout} s\n{self.logs()}')

    def __exit__(self, *exc) -> None:
        subprocess.run(['scancel', f'--partition={self.partition}'],
                       env=self.env(),
                       capture_output=True)
        for name in ('slurmd', 'slurmctld'):
            path = osp.join(self.root, f'{name}.pid')
            try:
                with open(path) as f:
                    pid = int(f.read().strip())
                os.kill(pid, signal.SIGTERM)
            except (FileNotFoundError, ValueError, ProcessLookupError):
                continue
            for _ in range(100):  # up to 10 s
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
