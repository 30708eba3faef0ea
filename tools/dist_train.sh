#!/usr/bin/env bash
# Train with torchrun: tools/dist_train.sh CONFIG GPUS [train.py args].
# NNODES, NODE_RANK, MASTER_ADDR and PORT set up multi-node runs; PYTHON
# picks the interpreter (e.g. .venv/bin/python). Without GPUs, GPUS CPU
# processes train with the gloo backend.
set -e

CONFIG=$1
GPUS=$2
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
    "$TOOLS_DIR/train.py" "$CONFIG" --launcher pytorch "${@:3}"
