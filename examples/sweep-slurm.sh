#!/usr/bin/env bash
# A distributed lstm-zoo sweep as a Slurm array: task 0 is the chief, tasks 1..N are workers.
#
#   sbatch --array=0-4 examples/sweep-slurm.sh          # a chief and 4 workers
#   sbatch --array=3 examples/sweep-slurm.sh            # bring worker-3 back (same id)
#
# SWEEP_DIR must be on a filesystem every node sees: the chief publishes its address there
# (chief.addr) and writes results.csv / results.json / trials.png there.
#SBATCH --job-name=lstm-zoo-sweep
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=12:00:00
#SBATCH --requeue
#SBATCH --output=%x-%A_%a.log
set -euo pipefail

RECIPE=${RECIPE:-weather}
SWEEP_DIR=${SWEEP_DIR:-$HOME/sweeps/$RECIPE}
PORT=${PORT:-8000}
COMMON=(--tuner random --max-trials 40 --epochs 30 --seed 0 --directory "$SWEEP_DIR")
mkdir -p "$SWEEP_DIR"

if [ "${SLURM_ARRAY_TASK_ID:-0}" = 0 ]; then
    echo "$(hostname -f):$PORT" > "$SWEEP_DIR/chief.addr.tmp"
    mv "$SWEEP_DIR/chief.addr.tmp" "$SWEEP_DIR/chief.addr"
    # A requeued chief reloads the sweep from SWEEP_DIR; workers wait for it (--rpc-timeout).
    exec lstm-zoo tune "$RECIPE" --role chief --oracle "0.0.0.0:$PORT" --worker-timeout 300 \
        "${COMMON[@]}"
fi

WORKER_ID="worker-$SLURM_ARRAY_TASK_ID"
for _ in $(seq 120); do [ -s "$SWEEP_DIR/chief.addr" ] && break; sleep 5; done
ORACLE=$(cat "$SWEEP_DIR/chief.addr")

# Restartable under its id: a crashed worker comes back as the same WORKER_ID and reruns the
# trial it had; a few attempts, with back-off, then give up (the chief re-queues the trial).
for attempt in 1 2 3 4 5; do
    if lstm-zoo tune "$RECIPE" --role worker --oracle "$ORACLE" --worker-id "$WORKER_ID" \
            --connect-timeout 120 "${COMMON[@]}"; then
        exit 0
    fi
    echo "worker $WORKER_ID: attempt $attempt failed; retrying in $((attempt * 30))s" >&2
    sleep $((attempt * 30))
done
exit 1
