#!/usr/bin/env bash
# Builds the port25 Debian package with dpkg-deb from files in this
# repository: no packaging tool beyond dpkg-dev's dpkg-deb (in every
# Debian), nothing fetched, every file of the package visible here.
#
#   cargo build --release -p port25
#   dist/debian/build-deb.sh target/release/port25 target/debian
#
# Writes OUTDIR/port25_VERSION_ARCH.deb and prints its path. The package:
#   /usr/bin/port25
#   /etc/port25/port25.toml     dist/port25.toml with data_dir = /var/lib/port25 and the
#                               listeners on 0.0.0.0:25/587/465 (a conffile)
#   /etc/port25/spampot.toml, collect.toml   the sensor's and collector's examples (conffiles)
#   /lib/systemd/system/        port25.service, port25-{mx,submission,submissions}.socket,
#                               port25-spampot.{service,socket}, port25-collector.{service,socket}
#   /usr/share/doc/port25/      DEPLOY.md, the other docs, examples/bind-capability.conf
# and maintainer scripts (postinst, prerm, postrm next to this file) that
# create the port25 system user and /var/lib/port25 (0700), and on purge
# delete them. PORT25_DEB_COMPRESSION=gzip (or none) makes a quick test
# package; the default is xz.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 PORT25_BINARY OUTDIR" >&2; exit 2; }
bin=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
command -v dpkg-deb >/dev/null || { echo "dpkg-deb is missing: apt-get install dpkg-dev" >&2; exit 1; }
[ -x "$bin" ] || { echo "$bin: not an executable" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "no version in $repo/Cargo.toml" >&2; exit 1; }
# The newest glibc symbol version the binary uses is the libc6 it needs.
glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
[ -n "$glibc" ] || { echo "cannot read the glibc version $bin needs (objdump, binutils)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$bin" "$stage/usr/bin/port25"

# The production configuration: the documented default with the three
# substitutions its comments name; each must hit exactly once.
conf="$stage/etc/port25/port25.toml"
install -d -m 0750 "$stage/etc/port25"
sed -e 's|^data_dir = "port25-data"$|data_dir = "/var/lib/port25"|' \
    -e 's|^address = "127.0.0.1:2525" .*|address = "0.0.0.0:25"        # port25-mx.socket passes it (socket activation)|' \
    -e 's|^address = "127.0.0.1:5870" .*|address = "0.0.0.0:587"       # port25-submission.socket|' \
    -e 's|^address = "127.0.0.1:4650" .*|address = "0.0.0.0:465"       # port25-submissions.socket (RFC 8314)|' \
    "$repo/dist/port25.toml" >"$conf"
for want in 'data_dir = "/var/lib/port25"' 'address = "0.0.0.0:25" ' 'address = "0.0.0.0:587" ' 'address = "0.0.0.0:465" '; do
    [ "$(grep -c "^$want" "$conf")" = 1 ] || { echo "dist/port25.toml changed: cannot set $want" >&2; exit 1; }
done
install -m 0640 "$repo/dist/spampot.toml" "$stage/etc/port25/spampot.toml"
install -m 0640 "$repo/dist/collect.toml" "$stage/etc/port25/collect.toml"

for unit in port25.service port25-mx.socket port25-submission.socket port25-submissions.socket port25-spampot.service port25-spampot.socket port25-collector.service port25-collector.socket; do
    install -D -m 0644 "$repo/dist/systemd/$unit" "$stage/lib/systemd/system/$unit"
done

doc="$stage/usr/share/doc/port25"
install -d "$doc/examples"
install -m 0644 "$repo"/docs/*.md "$doc/"
install -m 0644 "$repo/dist/systemd/bind-capability.conf" "$doc/examples/"
install -m 0644 "$repo/dist/egress.toml" "$doc/examples/"
cat >"$doc/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: port25

Files: *
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPY

install -d "$stage/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "$here/$s" "$stage/DEBIAN/$s"; done
printf '%s\n' /etc/port25/port25.toml /etc/port25/spampot.toml /etc/port25/collect.toml >"$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: port25
Version: $version
Architecture: $arch
Maintainer: port25 developers <postmaster@localhost>
Installed-Size: $size
Depends: libc6 (>= $glibc), libgcc-s1, adduser
Recommends: systemd
Section: mail
Priority: optional
Description: MX and authenticated submission kept apart, with egress policy and SpamPots
 port25 runs a provider's MX on port 25 (transport only, never an open
 relay) and authenticated submission on 587 and 465, with a durable spool,
 local delivery and an outbound queue; it also compiles an access network's
 egress policy, runs SpamPots honeypot sensors and reports on them.
 .
 The services run as the port25 user; ports 25, 587 and 465 come from
 systemd socket units.
CONTROL
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)

mkdir -p "$out"
deb="$out/port25_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${PORT25_DEB_COMPRESSION:-xz}" --build "$stage" "$deb" >/dev/null
echo "$deb"
