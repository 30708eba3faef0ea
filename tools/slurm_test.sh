#!/usr/bin/env bash
# Test on a Slurm cluster:
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# GPUS (processes in all), GPUS_PER_NODE (0: CPU processes, no GPU asked
# for; gloo), CPUS_PER_TASK and SRUN_ARGS (extra srun options) shape the
# job; PYTHON picks the interpreter.
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(dirname "$0")
# jobs that share a node need other rendezvous ports (default 29500)
if [ -n "${SLURM_JOB_ID:-}" ] && [ -z "${MASTER_PORT:-}" ]; then
    export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))
fi
SLURM_OPTS=()
if [ "$GPUS_PER_NODE" -gt 0 ]; then
    SLURM_OPTS+=(--gres=gpu:"$GPUS_PER_NODE" --ntasks-per-node="$GPUS_PER_NODE")
fi

# SRUN_ARGS is split into words on purpose.
PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --ntasks="$GPUS" \
    "${SLURM_OPTS[@]}" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$TOOLS_DIR/test.py" "$CONFIG" "$CHECKPOINT" \
    --launcher slurm "${@:5}"
