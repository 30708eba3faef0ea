#!/usr/bin/env bash
# Install Debian's Slurm daemons and clients for the tests' one-node cluster
# (mtl_pvt/testing/slurm_cluster.py: the preemption and requeue tests of
# tools/study.py --launcher slurm). `make test` runs this first. It needs
# root and apt-get; where either is missing, or the install fails, it says
# why and exits 0: the tests that need the cluster are then skipped with
# the reason, and the fake-sbatch tests still run.
PACKAGES="slurmctld slurmd slurm-client"
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install_slurm.sh: not root or no apt-get: the Slurm cluster" \
        "tests will be skipped"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
install() {
    timeout 600 apt-get install -y -q --no-install-recommends $PACKAGES \
        >/tmp/install_slurm.log 2>&1
}
if ! install; then
    timeout 300 apt-get update -q >>/tmp/install_slurm.log 2>&1
    if ! install; then
        echo "install_slurm.sh: apt-get could not install $PACKAGES (see" \
            "/tmp/install_slurm.log): the Slurm cluster tests will be skipped"
        exit 0
    fi
fi
echo "install_slurm.sh: installed $PACKAGES"
