#!/usr/bin/env bash
# Installs what vaultfs needs on Debian, builds it, and runs the main job on
# a local demo vault: init, back up a sample directory, list the snapshot,
# change a file, back up again (only the change is read), and restore.
#
# Usage: bash tools/demo.sh [SAMPLE_DIR]     (default: /usr/share/doc)
# The vault and restore go to ${DEMO_DIR:-${TMPDIR:-/tmp}/vaultfs-demo}.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if command -v apt-get >/dev/null; then
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        build-essential pkg-config ca-certificates curl zstd restic fuse3 attr \
        ntfs-3g mtools xfsprogs e2fsprogs qemu-utils libarchive-tools unzip >/dev/null
fi
if ! command -v cargo >/dev/null; then
    # Debian's own Rust is too old for edition 2024; rustup installs a current one.
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

cargo build --release --locked -p vaultfs-cli
vaultfs=$PWD/target/release/vaultfs

sample=${1:-/usr/share/doc}
demo=${DEMO_DIR:-${TMPDIR:-/tmp}/vaultfs-demo}
rm -rf "$demo"
mkdir -p "$demo/sample"
cp -a "$sample/." "$demo/sample/"
printf 'demo password\n' >"$demo/password"
export VAULTFS_REPOSITORY=$demo/vault VAULTFS_PASSWORD_FILE=$demo/password

set -x
"$vaultfs" init
"$vaultfs" backup --tag demo "$demo/sample"
"$vaultfs" snapshots
"$vaultfs" ls latest | head -n 15
echo "a new line" >>"$(find "$demo/sample" -type f | head -n 1)"
"$vaultfs" backup --tag demo "$demo/sample"
"$vaultfs" restore latest --target "$demo/restored"
diff -r --no-dereference "$demo/sample" "$demo/restored$demo/sample"
set +x
echo "demo: the vault is $demo/vault; the restored copy matches the sample."
