#!/usr/bin/env bash
# Builds tokengate's runtime container image offline, with buildah and
# Debian's packages, from scratch (no registry, no FROM line):
#   1. a Release build of tokengate (tests off) in --build-dir;
#   2. a runtime root: exactly the shared libraries `ldd` says the binary
#      loads, taken from the Debian packages that ship them (apt-get download,
#      cached in --deb-cache, dpkg-deb -x), with their copyright files and
#      package records (for image scanners), the CA bundle, /etc/passwd and
#      /etc/group with the user nonroot (65532). No shell, no package manager;
#   3. `buildah commit` of that root as an OCI image: entrypoint tokengate,
#      cmd `serve -c /etc/tokengate/config.json`, user 65532, OCI labels.
# The Dockerfile runs step 2 (--root-only) in its build stage, so both give
# the same image.
#
# Usage: scripts/image.sh [--name NAME] [--output FILE.tar] [--build-dir DIR]
#                         [--binary FILE] [--deb-cache DIR] [--source URL]
#                         [--license SPDX]
#        scripts/image.sh --root-only DIR [--binary FILE] [--build-dir DIR] [--deb-cache DIR]
#   --name      image name (default tokengate:VERSION, the name examples/kubernetes uses)
#   --output    also write a docker-archive for `podman load` / `docker load`
#   --binary    use this tokengate binary instead of building one
#   --root-only assemble the runtime root in DIR and stop (no buildah needed)
# Needs root (or a user buildah can run as), apt-get with current package
# lists, and buildah (`scripts/setup.sh image`). If the overlay storage driver
# does not work here, the vfs driver is used. STORAGE_DRIVER and
# CONTAINERS_STORAGE_CONF are honoured as buildah honours them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

usage() { sed -n "/^# Usage/,/^#   --root-only/p" "$0" | sed "s/^# \{0,1\}//" >&2; exit 2; }

name=
output=
build_dir=build-image
binary=
deb_cache=
root_only=
source_url=
license=NOASSERTION
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --output) output=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --deb-cache) deb_cache=$2; shift 2 ;;
    --root-only) root_only=$2; shift 2 ;;
    --source) source_url=$2; shift 2 ;;
    --license) license=$2; shift 2 ;;
    *) usage ;;
  esac
done
deb_cache=${deb_cache:-$build_dir/debs}

if [ -z "$binary" ]; then
  echo "image: building tokengate (Release) in $build_dir/" >&2
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTOKENGATE_TESTS=OFF >/dev/null
  cmake --build "$build_dir" -j"$(nproc)" --target tokengate >/dev/null
  binary=$build_dir/tokengate
fi
binary=$(readlink -f "$binary")
version=$("$binary" --version | awk '{print $2}')
name=${name:-tokengate:$version}

work=$(mktemp -d -t tokengate-image.XXXXXX)
container=
cleanup() {
  [ -n "$container" ] && buildah rm "$container" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# --- 2. the runtime root ------------------------------------------------------
# The packages that ship what the binary loads: ldd's resolved paths, owned
# per dpkg (a merged-/usr host resolves /lib to /usr/lib, dpkg may know either).
owner() {
  local path=$1 pkg
  for p in "$path" "${path#/usr}" "/usr$path"; do
    pkg=$(dpkg-query -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1) && [ -n "$pkg" ] && { echo "$pkg"; return; }
  done
  echo "image: no Debian package owns $path" >&2
  return 1
}
mapfile -t libs < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
[ ${#libs[@]} -gt 0 ] || { echo "image: ldd found no shared libraries in $binary" >&2; exit 1; }
declare -A pkg_of
for lib in "${libs[@]}"; do
  pkg_of[$lib]=$(owner "$(readlink -f "$lib")")
done
mapfile -t pkgs < <(printf '%s\n' "${pkg_of[@]}" ca-certificates | sort -u)

mkdir -p "$deb_cache"
deb_cache=$(readlink -f "$deb_cache")
declare -A deb_of
for pkg in "${pkgs[@]}"; do
  # The file name apt would download; fetch it only when the cache lacks it.
  file=$(apt-get download --print-uris "$pkg" | awk '{print $2}')
  [ -n "$file" ] || { echo "image: apt-get knows no $pkg (run apt-get update)" >&2; exit 1; }
  if [ ! -s "$deb_cache/$file" ]; then
    (cd "$deb_cache" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$pkg" >/dev/null)
  fi
  deb_of[$pkg]=$deb_cache/$file
  mkdir -p "$work/pkg/$pkg"
  dpkg-deb -x "$deb_cache/$file" "$work/pkg/$pkg"
done

root=${root_only:-$work/root}
mkdir -p "$root"
root=$(readlink -f "$root")
if [ -n "$(ls -A "$root")" ]; then echo "image: $root is not empty" >&2; exit 1; fi
# Merged /usr, as Debian 12 lays it out, so the binary's interpreter path
# (/lib64/ld-linux-x86-64.so.2) and the loader's search path both resolve.
mkdir -p "$root"/usr/{bin,lib,lib64} "$root"/etc/ssl/certs "$root"/var/lib/dpkg/status.d "$root"/tmp
ln -s usr/bin "$root/bin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp"

# copy_chain PKGDIR PATH: PATH (as the host names it) from the package's
# files into the root under /usr, following symlinks within the package.
copy_chain() {
  local pkgdir=$1 path=$2 rel src dest link
  for _ in 1 2 3 4 5 6 7 8; do
    rel=${path#/usr}
    src=$pkgdir/usr$rel
    [ -e "$src" ] || [ -L "$src" ] || src=$pkgdir$rel
    [ -e "$src" ] || [ -L "$src" ] || { echo "image: $path is not in $(basename "$pkgdir")" >&2; return 1; }
    dest=$root/usr$rel
    mkdir -p "$(dirname "$dest")"
    cp -a "$src" "$dest"
    [ -L "$src" ] || return 0
    link=$(readlink "$src")
    case "$link" in
      /*) path=$link ;;
      *) path=$(dirname "$path")/$link ;;
    esac
  done
  echo "image: symlink chain too long at $path" >&2
  return 1
}
for lib in "${libs[@]}"; do
  copy_chain "$work/pkg/${pkg_of[$lib]}" "$lib"
done
# The CA bundle update-ca-certificates would build (the package's own script
# needs a shell and openssl, neither of which is in the image).
cat "$work"/pkg/ca-certificates/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
for pkg in "${pkgs[@]}"; do
  mkdir -p "$root/usr/share/doc/$pkg"
  cp "$work/pkg/$pkg/usr/share/doc/$pkg/copyright" "$root/usr/share/doc/$pkg/copyright"
  # One control record per package, as distroless images keep them: image
  # scanners read these to match packages against security advisories.
  { dpkg-deb -f "${deb_of[$pkg]}"; echo "Status: install ok installed"; } >"$root/var/lib/dpkg/status.d/$pkg"
done
cp /usr/lib/os-release "$root/usr/lib/os-release"
ln -s ../usr/lib/os-release "$root/etc/os-release"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
mkdir -p "$root/etc/tokengate"
install -m 0755 "$binary" "$root/usr/bin/tokengate"

if [ -n "$root_only" ]; then
  echo "image: runtime root in $root ($(du -sh "$root" | cut -f1)), packages: ${pkgs[*]}" >&2
  exit 0
fi

# --- 3. the image ---------------------------------------------------------------
command -v buildah >/dev/null || { echo "image: buildah is missing: scripts/setup.sh image" >&2; exit 1; }
if ! container=$(buildah from scratch 2>"$work/from.err"); then
  echo "image: buildah from failed ($(tr '\n' ' ' <"$work/from.err")); using the vfs storage driver" >&2
  export STORAGE_DRIVER=vfs
  container=$(buildah from scratch)
fi
buildah copy --quiet "$container" "$root/" / >/dev/null
if [ -z "$source_url" ]; then
  source_url=$(git -C "$repo" remote get-url origin 2>/dev/null || echo "https://example.invalid/tokengate")
fi
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
buildah config \
  --entrypoint '["/usr/bin/tokengate"]' \
  --cmd '["serve", "-c", "/etc/tokengate/config.json"]' \
  --user 65532:65532 \
  --workingdir / \
  --env PATH=/usr/bin \
  --port 9191/tcp \
  --label org.opencontainers.image.title=tokengate \
  --label "org.opencontainers.image.description=ext_authz server for Kubernetes service-account tokens" \
  --label "org.opencontainers.image.source=$source_url" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.licenses=$license" \
  "$container"
buildah commit --quiet --format oci --rm "$container" "$name" >/dev/null
container=
size=$(buildah images --format '{{.Size}}' "$name" | head -n 1)
echo "image: $name built ($size uncompressed; packages: ${pkgs[*]})" >&2
if [ -n "$output" ]; then
  rm -f "$output"
  buildah push --quiet "$name" "docker-archive:$output:$name" >/dev/null
  echo "image: wrote $output ($(du -h "$output" | cut -f1)); load it with podman load -i / docker load -i" >&2
fi
