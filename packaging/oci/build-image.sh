#!/usr/bin/env bash
# Builds Coffer's OCI image from scratch with buildah (Debian package buildah):
# no base image, only what the program needs at run time.
#
#   /usr/bin/coffer                 the program (a Release build)
#   the shared libraries it loads   as ldd lists them, at their paths on this
#                                   machine, and the NSS modules nsswitch.conf
#                                   names, with theirs
#   /etc/nsswitch.conf              passwd and group from files; hosts from files,
#                                   myhostname (localhost and *.localhost) and DNS
#   /etc/passwd, /etc/group         root and coffer (65532:65532), the user it runs as
#   /etc/ssl/certs/ca-certificates.crt and OpenSSL's default paths to it
#   /var/lib/coffer                 the coffer user's, for the data directory
#   /tmp                            1777
#   /usr/share/doc/<package>/copyright for every Debian package a file comes from
#
# The image runs /usr/bin/coffer as 65532:65532; its default command is a server
# on 0.0.0.0:8443 with its data in /var/lib/coffer/data. packaging/kubernetes
# names the image by its default name, coffer:latest.
#
# Usage: packaging/oci/build-image.sh [BINARY]
#   BINARY           the program to pack (default: build-release/coffer, made by
#                    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release)
#   COFFER_IMAGE     the image's name (default: coffer:latest)
#   COFFER_IMAGE_CONTAINER  the name of buildah's working container (default:
#                    coffer-image-<pid>); it is removed when the script ends
# Prints the image's id. Run as root, or under `buildah unshare`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
binary=${1:-$repo/build-release/coffer}
image=${COFFER_IMAGE:-coffer:latest}
container=${COFFER_IMAGE_CONTAINER:-coffer-image-$$}
uid=65532
gid=65532

die() { echo "build-image.sh: $*" >&2; exit 1; }
[[ -x $binary ]] || die "no program at $binary; build it with
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release
  cmake --build build-release --target coffer"
command -v buildah >/dev/null || die "buildah is missing (Debian package buildah)"
# buildah mount needs root, or the user namespace of `buildah unshare`.
[[ $(id -u) == 0 ]] || die "run as root, or under buildah unshare"

stage=$(mktemp -d)
files=$stage.files  # what is copied from this machine, for the licences below
made=
cleanup() {
  if [[ -n $made ]]; then
    buildah rm "$container" >/dev/null 2>&1 || true
  fi
  rm -rf "$stage" "$files"
}
trap cleanup EXIT
: >"$files"

# A file of this machine at the same path in the image: the path's directories
# resolved (/lib is /usr/lib on Debian 12), the file itself copied.
put() {
  local dir
  dir=$(realpath "$(dirname "$1")")
  if [[ ! -e $stage$dir/$(basename "$1") ]]; then
    mkdir -p "$stage$dir"
    cp -L --preserve=mode "$1" "$stage$dir/$(basename "$1")"
    echo "$dir/$(basename "$1")" >>"$files"
  fi
}

# The libraries a program or library needs, as ldd lists them: "name => /path
# (address)", and for the loader "/path (address)".
put_libraries() {
  local listing lib
  listing=$(ldd "$1") || die "ldd $1 failed"
  if grep -q 'not found' <<<"$listing"; then
    die "$1 needs a library this machine lacks: $(grep 'not found' <<<"$listing")"
  fi
  while read -r lib; do
    put "$lib"
  done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$listing")
}

mkdir -p "$stage/usr/bin"
install -m 0755 "$binary" "$stage/usr/bin/coffer"
put_libraries "$stage/usr/bin/coffer"
# Debian 12 is merged-/usr: /lib and /lib64 are /usr/lib and /usr/lib64, and the
# program names its loader as /lib64/ld-linux-x86-64.so.2.
for link in lib lib64; do
  if [[ -L /$link && -d $stage/usr/$link ]]; then
    ln -s "usr/$link" "$stage/$link"
  fi
done

mkdir -p "$stage/etc"
cat >"$stage/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
shadow: files
hosts: files myhostname dns
EOF
# Every NSS module nsswitch.conf names, from the directory of the program's libc.
# glibc 2.34 and later have files and dns built in (their modules are empty);
# myhostname is a module of its own (Debian package libnss-myhostname).
libc=$(ldd "$binary" | awk '$1 == "libc.so.6" { print $3 }')
[[ -n $libc ]] || die "$binary does not load libc.so.6"
services=$(awk '{ for (i = 2; i <= NF; i++) print $i }' "$stage/etc/nsswitch.conf" | sort -u)
for service in $services; do
  module=$(dirname "$libc")/libnss_$service.so.2
  [[ -f $module ]] || die "$module is missing (Debian package libnss-$service or libc6)"
  put "$module"
  put_libraries "$module"
done
cat >"$stage/etc/passwd" <<EOF
root:x:0:0:root:/root:/usr/sbin/nologin
coffer:x:$uid:$gid:Coffer:/var/lib/coffer:/usr/sbin/nologin
EOF
cat >"$stage/etc/group" <<EOF
root:x:0:
coffer:x:$gid:
EOF

# CA certificates, where OpenSSL looks by default (its OPENSSLDIR's cert.pem and
# certs/, as Debian links them) and where Debian keeps them.
bundle=/etc/ssl/certs/ca-certificates.crt
[[ -s $bundle ]] || die "$bundle is missing (Debian package ca-certificates)"
mkdir -p "$stage/etc/ssl/certs"
install -m 0644 "$bundle" "$stage$bundle"
if [[ -f /etc/ssl/openssl.cnf ]]; then
  install -m 0644 /etc/ssl/openssl.cnf "$stage/etc/ssl/openssl.cnf"
fi
openssldir=$(openssl version -d 2>/dev/null | sed -n 's/^OPENSSLDIR: "\(.*\)"$/\1/p')
openssldir=${openssldir:-/usr/lib/ssl}
mkdir -p "$stage$openssldir"
ln -s "$bundle" "$stage$openssldir/cert.pem"
ln -s /etc/ssl/certs "$stage$openssldir/certs"
ln -s /etc/ssl/openssl.cnf "$stage$openssldir/openssl.cnf"

# The licences of what is copied from Debian's packages. dpkg knows some files
# by their path before the /usr merge (/lib/x86_64-linux-gnu/libc.so.6).
package_of() {
  { dpkg -S "$1" 2>/dev/null || dpkg -S "${1#/usr}" 2>/dev/null || true; } | sed -n '1s/:.*//p'
}
{
  while read -r file; do
    package_of "$file"
  done <"$files"
  echo ca-certificates  # the bundle is made on install and belongs to no package
} | sort -u | while read -r package; do
  if [[ -f /usr/share/doc/$package/copyright ]]; then
    mkdir -p "$stage/usr/share/doc/$package"
    install -m 0644 "/usr/share/doc/$package/copyright" "$stage/usr/share/doc/$package/copyright"
  fi
done

mkdir -p "$stage/var/lib/coffer" "$stage/tmp"
chmod 0700 "$stage/var/lib/coffer"
chmod 1777 "$stage/tmp"
chown -R 0:0 "$stage"
chown "$uid:$gid" "$stage/var/lib/coffer"
chmod 0755 "$stage"

buildah from --name "$container" scratch >/dev/null
made=1
root=$(buildah mount "$container")
tar -C "$stage" --numeric-owner -cf - . | tar -C "$root" --numeric-owner -xpf -
buildah umount "$container" >/dev/null
version=$("$binary" --version 2>/dev/null | head -n 1 | awk '{ print $NF }' || true)
buildah config \
  --user "$uid:$gid" \
  --entrypoint '["/usr/bin/coffer"]' \
  --cmd "[\"server\", \"--data-dir\", \"/var/lib/coffer/data\", \"--listen\", \"0.0.0.0\",
          \"--port\", \"8443\"]" \
  --workingdir / \
  --port 8443/tcp \
  --label org.opencontainers.image.title=coffer \
  --label "org.opencontainers.image.version=${version:-unknown}" \
  --label "org.opencontainers.image.description=Coffer, secrets compatible with Azure Key Vault" \
  "$container"
buildah commit --quiet --rm --format oci "$container" "$image"
made=
