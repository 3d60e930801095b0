#!/usr/bin/env bash
# Installs the real parsers of the cluster files intercloud renders (Debian/Ubuntu,
# as root), used by intercloud-vpn/tests/bootstrap_parsers.rs:
#   slurm.conf:           slurmctld (pulls in slurm-client for scontrol/sinfo, munge)
#   MPI hostfiles:        openmpi-bin (mpirun), mpich (mpiexec.hydra)
#   Hadoop core-site.xml: libxml2-utils (xmllint); Hadoop itself is not packaged
# plus util-linux (unshare) and iproute2 (ip), which the tests use to run slurmctld in
# private namespaces. How: scripts/apt-deps.sh (idempotent; never starts munged or
# slurmctld on the host; without root it exits 0 and the tests skip).
set -euo pipefail
exec "$(dirname "$0")/apt-deps.sh" bootstrap-deps "the bootstrap parser tests" \
  slurmctld slurm-client munge openmpi-bin mpich libxml2-utils util-linux iproute2
