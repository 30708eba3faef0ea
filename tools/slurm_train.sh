#!/usr/bin/env bash
# Train on a Slurm cluster:
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [--requeue] \
#       [train.py args]
# GPUS (processes in all), GPUS_PER_NODE (0: CPU processes, no GPU asked
# for; gloo), CPUS_PER_TASK and SRUN_ARGS (extra srun options) shape the
# job; PYTHON picks the interpreter.
# --requeue: a run that stops on SIGUSR1 (asked for SIGNAL_SECONDS, default
# 120, before the time limit) or on a preemption's SIGTERM writes a
# checkpoint and WORK_DIR/preempted.json and exits with code 75 (mtl_pvt's
# PreemptionHook). Inside an sbatch job submitted with
# `--requeue --signal=USR1@120`, the job is then requeued (scontrol
# requeue) and the requeued job resumes; alone (srun's own allocation) the
# script exits with 75, to be run again with --resume.
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
SIGNAL_SECONDS=${SIGNAL_SECONDS:-120}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(dirname "$0")
PREEMPTED="$WORK_DIR/preempted.json"

REQUEUE=0
RESUME=0
ARGS=()
for arg in "${@:5}"; do
    case "$arg" in
        --requeue) REQUEUE=1 ;;
        --resume*) RESUME=1; ARGS+=("$arg") ;;
        *) ARGS+=("$arg") ;;
    esac
done
# jobs that share a node need other rendezvous ports (default 29500)
if [ -n "${SLURM_JOB_ID:-}" ] && [ -z "${MASTER_PORT:-}" ]; then
    export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))
fi
SLURM_OPTS=()
if [ "$GPUS_PER_NODE" -gt 0 ]; then
    SLURM_OPTS+=(--gres=gpu:"$GPUS_PER_NODE" --ntasks-per-node="$GPUS_PER_NODE")
fi
if [ "$REQUEUE" = 1 ]; then
    if [ -z "${SLURM_JOB_ID:-}" ]; then
        # srun makes its own allocation; inside an sbatch job, sbatch's
        # --signal=USR1@SECONDS asks for the signal
        SLURM_OPTS+=(--signal=USR1@"$SIGNAL_SECONDS")
    fi
    # a requeued job, or one whose run stopped on a signal: continue it
    if [ "$RESUME" = 0 ] && { [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] ||
                              [ -f "$PREEMPTED" ]; }; then
        ARGS+=(--resume)
    fi
fi

# preempted.json from now on is this attempt's (an attempt that fails
# before training must not look preempted, or it would be requeued forever)
rm -f "$PREEMPTED"

# SRUN_ARGS is split into words on purpose.
PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --ntasks="$GPUS" \
    "${SLURM_OPTS[@]}" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$TOOLS_DIR/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
    --launcher slurm "${ARGS[@]}"
CODE=$?
if [ -f "$PREEMPTED" ]; then
    if [ "$REQUEUE" = 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
        echo "stopped on a signal (see $PREEMPTED): requeueing job $SLURM_JOB_ID"
        scontrol requeue "$SLURM_JOB_ID"
        # the requeue ends this job script; should it not, wait for it
        sleep "$SIGNAL_SECONDS"
    fi
    echo "stopped on a signal (see $PREEMPTED): resume with --resume"
    exit 75
fi
exit "$CODE"
