#!/usr/bin/env bash
# Test with torchrun: tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py
# args]. NNODES, NODE_RANK, MASTER_ADDR and PORT set up multi-node runs;
# PYTHON picks the interpreter (e.g. .venv/bin/python).
set -e

CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(dirname "$0")

PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$TOOLS_DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
