#!/usr/bin/env bash
# A private single-node Slurm for tests/cli/test_sweep_slurm.cpp: munged, slurmctld and slurmd from
# Debian's munge, slurmctld and slurmd packages, on this host, every file (config, key, sockets,
# state, logs) in DIR, on ports of its own, stopped at the end. Needs root (slurmd runs the jobs).
#   slurm_single_node.sh check               0 when the binaries are here, 77 otherwise
#   slurm_single_node.sh run DIR SCRIPT      start it, `sbatch --wait SCRIPT`, stop it: 0 when every
#                                            array task ran, 77 when Slurm cannot start, 1 otherwise
set -u
PATH=$PATH:/usr/sbin:/sbin
for b in munged slurmctld slurmd sbatch sinfo squeue; do
  command -v "$b" >/dev/null 2>&1 || { echo "slurm_single_node: $b is missing"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || { echo "slurm_single_node: needs root"; exit 77; }
[ "${1:-}" = check ] && exit 0
[ "${1:-}" = run ] && [ $# -eq 3 ] || { echo "usage: $0 check | run DIR SCRIPT"; exit 2; }
DIR=$2
SCRIPT=$3
mkdir -p "$DIR"/state "$DIR"/spool
chmod 700 "$DIR"
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
PORT=$((20000 + ($$ % 20000)))

# munge: a fresh key and a socket in DIR (--force: /tmp is world-writable)
dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 status=none
chmod 400 "$DIR/munge.key"
munged --force --key-file="$DIR/munge.key" --socket="$DIR/munge.sock" --pid-file="$DIR/munged.pid" \
  --log-file="$DIR/munged.log" --seed-file="$DIR/munged.seed" || { echo "slurm_single_node: munged did not start"; exit 77; }

cat >"$DIR/slurm.conf" <<EOF
ClusterName=dtsimtest
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge.sock
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmdTimeout=30
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$DIR/slurm.conf

stop() {
  for p in slurmd slurmctld munged; do
    [ -f "$DIR/$p.pid" ] && kill "$(cat "$DIR/$p.pid")" 2>/dev/null
  done
  sleep 1
  for p in slurmd slurmctld munged; do
    [ -f "$DIR/$p.pid" ] && kill -9 "$(cat "$DIR/$p.pid")" 2>/dev/null
  done
}
trap stop EXIT

slurmctld -i || { echo "slurm_single_node: slurmctld did not start"; cat "$DIR/slurmctld.log"; exit 77; }
slurmd || { echo "slurm_single_node: slurmd did not start"; cat "$DIR/slurmd.log"; exit 77; }
up=0
for _ in $(seq 1 60); do
  if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then up=1; break; fi
  sleep 0.5
done
if [ $up -eq 0 ]; then
  echo "slurm_single_node: the node did not come up"
  sinfo 2>&1; tail -20 "$DIR/slurmctld.log" "$DIR/slurmd.log"
  exit 77
fi
echo "slurm_single_node: up ($HOST, $CPUS CPUs, port $PORT)"
# sbatch --wait returns the highest exit code of the array's tasks (a failing run gives 1): what
# counts is that every task ran, which --collect checks.
timeout 600 sbatch --wait "$SCRIPT"
echo "slurm_single_node: sbatch --wait returned $?"
if [ -n "$(squeue -h 2>/dev/null)" ]; then
  echo "slurm_single_node: tasks still queued"; squeue; exit 1
fi
exit 0
