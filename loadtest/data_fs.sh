# Sourced by the load drivers: sets WORK_ROOT, the file system the router's data (sled, the
# commit log, the recordings) goes to during a run.
#
#   DATA_FS=journal (default)  an ext4 file system *with* a journal, as a regulation centre's
#                              recording volume is: an image ($DATA_FS_IMAGE, default
#                              /var/lib/sas-bench/ext4-journal.img, 8 GiB sparse, made once)
#                              loop-mounted at $DATA_FS_MOUNT (default /mnt/sas-bench). Root.
#   DATA_FS=root               /tmp, on this VM's root file system.
#
# Why: the VM's root file system is ext4 *without* a journal. There the inode allocator skips
# every inode deleted in the last 1-5 minutes by reading its on-disk copy (ext4's
# `recently_deleted`, only called without a journal), and every run deletes thousands of
# recordings at its end (other engineers' tests too): the next run's file creations scanned
# past them, 6-15 % of the router's CPU at 500 calls/s (docs/performance.md). A journalled
# volume does not pay it, and pays its syncs in the journal instead. The loop device's own
# work runs in kernel threads, not in the router: docs/performance.md says what that moves.
case "${DATA_FS:-journal}" in
  root) WORK_ROOT=/tmp ;;
  journal)
    DATA_FS_IMAGE=${DATA_FS_IMAGE:-/var/lib/sas-bench/ext4-journal.img}
    DATA_FS_MOUNT=${DATA_FS_MOUNT:-/mnt/sas-bench}
    if ! mountpoint -q "$DATA_FS_MOUNT"; then
      [ "$(id -u)" = 0 ] || { echo "DATA_FS=journal mounts an image: run as root, or DATA_FS=root" >&2; exit 1; }
      mkdir -p "$(dirname "$DATA_FS_IMAGE")" "$DATA_FS_MOUNT"
      # Two drivers starting at once make and mount it once.
      (
        flock 9
        if ! mountpoint -q "$DATA_FS_MOUNT"; then
          [ -f "$DATA_FS_IMAGE" ] || { truncate -s 8G "$DATA_FS_IMAGE" && mkfs.ext4 -q -F "$DATA_FS_IMAGE"; }
          mount -o loop "$DATA_FS_IMAGE" "$DATA_FS_MOUNT"
        fi
      ) 9>"$DATA_FS_IMAGE.lock"
    fi
    WORK_ROOT=$DATA_FS_MOUNT ;;
  *) echo "DATA_FS is journal or root, not '$DATA_FS'" >&2; exit 1 ;;
esac
echo "router data on $WORK_ROOT (DATA_FS=${DATA_FS:-journal})" >&2

# The kernel's IO threads (writeback, journal, loop device, softirq), machine-wide, as
# "tid ticks" lines: what the file system does for the router outside its process. The
# drivers print it per call beside the router's CPU (kernel_io_delta BEFORE AFTER).
kernel_io_ticks() {
  for s in /proc/[0-9]*/task/*/stat; do
    sed -n 's/^\([0-9]*\) (\(kworker\|jbd2\|ksoftirqd\|loop\)[^)]*) /\1 /p' "$s" 2>/dev/null
  done | awk '{print $1, $13 + $14}'
}
# Ticks between two kernel_io_ticks snapshots, over the threads alive at both (kworkers
# come and go: one gone would count negative).
kernel_io_delta() {
  join <(echo "$1" | sort) <(echo "$2" | sort) | awk '{n += $3 - $2} END {print n + 0}'
}
