#!/usr/bin/env bash
# `make deb`: target/debian/onebox_<version>_<arch>.deb, built with dpkg-deb from the release
# binary. It installs:
#   /usr/bin/onebox
#   /etc/onebox/onebox.toml                    the configuration (a conffile)
#   /lib/systemd/system/onebox.{service,socket} the units (hardened; sockets held across restarts)
#   /usr/share/onebox/{zones,site}             the example zone and site, copied to
#                                              /var/lib/onebox on first install (postinst)
#   /usr/share/doc/onebox/                     README, every key with its default, copyright
# and its postinst makes the system user `onebox` and /var/lib/onebox. Nothing is started.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BINARY=$TARGET/release/onebox
[[ -x $BINARY ]] || { echo "build.sh: $BINARY missing: run make release first" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)
arch=$(dpkg --print-architecture)
# The newest glibc symbol version the binary needs, when binutils can tell.
libc="libc6"
if command -v objdump >/dev/null; then
    needed=$(objdump -T "$BINARY" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
    [[ -n $needed ]] && libc="libc6 (>= $needed)"
fi

pkg=$TARGET/debian/onebox_${version}_${arch}
rm -rf "$pkg"
mkdir -p "$pkg/DEBIAN"
install -D -m 0755 "$BINARY" "$pkg/usr/bin/onebox"
install -D -m 0644 "$ROOT/deploy/debian/onebox.toml" "$pkg/etc/onebox/onebox.toml"
install -D -m 0644 "$ROOT/deploy/systemd/onebox.service" "$pkg/lib/systemd/system/onebox.service"
install -D -m 0644 "$ROOT/deploy/systemd/onebox.socket" "$pkg/lib/systemd/system/onebox.socket"
mkdir -p "$pkg/usr/share/onebox"
cp -r "$ROOT/zones" "$ROOT/site" "$pkg/usr/share/onebox/"
install -D -m 0644 "$ROOT/README.md" "$pkg/usr/share/doc/onebox/README.md"
install -D -m 0644 "$ROOT/config/onebox.toml" "$pkg/usr/share/doc/onebox/onebox.toml.defaults"
cat >"$pkg/usr/share/doc/onebox/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: onebox

Files: *
License: MIT OR Apache-2.0
COPYRIGHT
for script in postinst prerm postrm; do
    install -m 0755 "$ROOT/deploy/debian/$script" "$pkg/DEBIAN/$script"
done
echo /etc/onebox/onebox.toml >"$pkg/DEBIAN/conffiles"
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: onebox
Version: $version
Architecture: $arch
Maintainer: onebox maintainers <maintainers@localhost>
Depends: $libc, adduser
Section: net
Priority: optional
Installed-Size: $(du -sk "$pkg" | cut -f1)
Description: authoritative DNS, web origin, application and database in one server
 onebox serves the DNS zones in /var/lib/onebox/zones, the web site in
 /var/lib/onebox/site over HTTPS (HTTP/1.1 and HTTP/2), and its application (a
 blog with an editor and a JSON API) over SQLite or MySQL/MariaDB. Reloads,
 restarts and binary upgrades lose no query and no request.
CONTROL
dpkg-deb --build --root-owner-group "$pkg" "$TARGET/debian/" >/dev/null
echo "$TARGET/debian/onebox_${version}_${arch}.deb"
