#!/usr/bin/env bash
# Builds, without any image registry, the local base images the Python and
# Node template images build FROM in oe-rt's container tests:
#
#   ./scripts/base-images.sh            # both; prints their names
#   ./scripts/base-images.sh python     # or only one: python, node
#
#   oe-rt-base/python:bookworm-r1   Debian 12's python3 with python3-grpcio,
#                                   python3-protobuf and python3-yaml
#   oe-rt-base/node:trixie-r1       Debian 13's nodejs (20) with npm (from
#                                   the npm registry) and CA certificates
#
# The node image is Debian 13's: the Node template needs Node 20 or later
# (Node 18's http2 drops the answer of a call still in flight when the
# runtime stops gracefully: docs/container.md), and Debian 12 has only 18.
#
# The public bases the templates default to (debian:bookworm-slim,
# node:20-alpine) cannot be pulled where no registry answers; these stand in
# for them (docs/container.md). An image is made from Debian packages only:
# apt-get computes the closure of the packages below against an empty dpkg
# database (so the host's own packages change nothing), downloads them from
# the host's apt sources (for a suite the host does not have, from
# deb.debian.org with package lists of its own in the cache) into a cache
# ($OE_RT_BASE_CACHE, default /tmp/oe-rt-docker/debs, kept between runs), dpkg-deb extracts them into a
# merged-/usr root file system, and `docker import` makes the image. No
# maintainer script runs: the few things they would do (/bin/sh, /etc/passwd
# with root and nobody, the CA bundle) are done here. That is much faster than
# debootstrap (no chroot, no dpkg --configure of ~90 packages) and the
# images are smaller; apt-get cannot be used inside them (no dpkg database),
# which the templates' Dockerfiles do not need when the base already has
# their packages.
#
# Idempotent: an image whose tag (the recipe's revision, RECIPE below) already
# exists is left alone, so a second run costs a `docker image inspect`. Bump
# RECIPE when the recipe changes. Needs: a Docker engine that answers (see
# scripts/docker-engine.sh), apt-get and dpkg-deb (Debian or Ubuntu), curl
# (or npm) for the node image; as root it runs apt-get update when
# the package lists are missing. The time it takes here is in docs/container.md.
set -euo pipefail

RECIPE=r1
# The npm release put into the node image (npm 10 runs on Node 18.17 and
# later), and the SHA-512 of its tarball (the registry's dist.integrity,
# sha512-iriPEPIkoMYUy3F6f3wwSZAU93E0Eg6cHwIR6jzzOXWSy+SD/rOODEs74cVONHKSx2obXtuUoyidVEhISrisgQ==,
# in hex), checked.
NPM_VERSION=10.9.2
NPM_SHA512=8ab88f10f224a0c614cb717a7f7c30499014f77134120e9c1f0211ea3cf3397592cbe483feb38e0c4b3be1c54e347292c76a1b5edb94a3289d5448484ab8ac81
cache=${OE_RT_BASE_CACHE:-/tmp/oe-rt-docker/debs}

# Each image's Debian suite: the host's own (bookworm here), or another one
# read from deb.debian.org (apt_opts).
python_suite=bookworm
node_suite=trixie
python_image=oe-rt-base/python:$python_suite-$RECIPE
node_image=oe-rt-base/node:$node_suite-$RECIPE
# What each image holds, with what apt-get says they depend on. dash and
# coreutils: the templates' bin/ scripts are /bin/sh scripts (dirname);
# sed: their Dockerfiles edit the configuration copies.
python_pkgs=(dash coreutils sed python3 python3-grpcio python3-protobuf python3-yaml)
node_pkgs=(dash coreutils sed nodejs)
# Pulled in as dependencies but of no use in an image that never runs dpkg.
skip_pkgs=" dpkg tar "

log() { echo "base-images: $*" >&2; }

# The host's Debian suite: its packages come from the host's own apt sources.
host_suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
# What use_suite sets: apt's options and the directory of the cached .debs.
apt_opts=()
archives=$cache

# use_suite SUITE: points apt_opts and archives at SUITE. The host's suite
# uses the host's sources and lists, and the cache itself; another suite
# uses deb.debian.org (checked with the keys of debian-archive-keyring) with
# lists and a cache of its own in $cache/SUITE, its lists fetched the first
# time and again when a day old (the security archive drops superseded
# packages).
use_suite() {
	local suite=$1
	apt_opts=()
	archives=$cache
	[ "$suite" != "$host_suite" ] || return 0
	local dir=$cache/$suite key=/usr/share/keyrings/debian-archive-keyring.gpg
	archives=$dir
	mkdir -p "$dir/lists/partial" "$dir/partial"
	cat >"$dir/sources.list" <<-EOF
		deb [signed-by=$key] http://deb.debian.org/debian $suite main
		deb [signed-by=$key] http://deb.debian.org/debian-security $suite-security main
	EOF
	apt_opts=(-o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts=-
		-o Dir::State::Lists="$dir/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
	[ -z "$(find "$dir/lists" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null)" ] || return 0
	log "fetching the package lists of Debian $suite from deb.debian.org"
	if ! flock "$cache/.oe-rt-lock" apt-get update -qq "${apt_opts[@]}" \
		-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false \
		-o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false \
		-o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false \
		-o Acquire::IndexTargets::deb::CNF::DefaultEnabled=false \
		-o APT::Sandbox::User=root -o Debug::NoLocking=1 >/dev/null; then
		# Older lists still name what the cache holds.
		[ -n "$(find "$dir/lists" -maxdepth 1 -name '*_Packages*' 2>/dev/null)" ] || return 1
		log "could not refresh Debian $suite's package lists; using the older ones"
	fi
}

# apt_closure PKG...: the packages apt-get would install on an empty system.
apt_closure() {
	local status
	status=$(mktemp)
	apt-get -s -qq "${apt_opts[@]}" -o Dir::State::status="$status" install --no-install-recommends "$@" |
		awk '$1 == "Inst" { print $2 }'
	rm -f "$status"
}

# fetch PKG...: downloads the closure into the cache; prints the .deb paths.
fetch() {
	local pkgs status
	mkdir -p "$archives/partial"
	status=$(mktemp)
	pkgs=$(apt_closure "$@")
	if [ -z "$pkgs" ]; then
		log "apt-get found no packages for $*"
		return 1
	fi
	# --download-only with an empty status downloads the whole closure
	# (verified against the signed lists) and keeps what is cached; one
	# image's download at a time (flock), the other waits.
	flock "$cache/.oe-rt-lock" apt-get install -qq --download-only --no-install-recommends \
		"${apt_opts[@]}" -o Dir::State::status="$status" -o Dir::Cache::archives="$archives" \
		-o APT::Sandbox::User=root -o Debug::NoLocking=1 "$@" >/dev/null
	rm -f "$status"
	local p f
	for p in $pkgs; do
		case $skip_pkgs in *" $p "*) continue ;; esac
		# The newest cached file of the package (the cache keeps old ones).
		f=$(ls -t "$archives/${p}_"*.deb 2>/dev/null | head -n 1)
		[ -n "$f" ] || { log "$p was not downloaded into $archives"; return 1; }
		echo "$f"
	done
}

# rootfs DIR DEB...: a merged-/usr root file system from the packages.
rootfs() {
	local dir=$1
	shift
	mkdir -p "$dir/usr/bin" "$dir/usr/sbin" "$dir/usr/lib" "$dir/usr/lib64" \
		"$dir/etc" "$dir/tmp" "$dir/root" "$dir/var/tmp" "$dir/proc" "$dir/sys" "$dir/dev"
	local d
	for d in bin sbin lib lib64; do ln -s "usr/$d" "$dir/$d"; done
	# tar keeps the links /bin, /lib... to /usr (dpkg-deb -x would replace
	# them with directories); two packages at a time.
	printf '%s\n' "$@" | xargs -P 2 -I{} sh -c \
		'dpkg-deb --fsys-tarfile "$2" | tar -x -C "$1" --keep-directory-symlink --no-same-owner' sh "$dir" {}
	chmod 1777 "$dir/tmp" "$dir/var/tmp"
	[ -e "$dir/usr/bin/sh" ] || ln -s dash "$dir/usr/bin/sh"
	cat >"$dir/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
	EOF
	cat >"$dir/etc/group" <<-'EOF'
		root:x:0:
		nogroup:x:65534:
	EOF
	# What a container does not need: documentation, manuals, translations.
	rm -rf "$dir/usr/share/doc" "$dir/usr/share/man" "$dir/usr/share/info" \
		"$dir/usr/share/locale" "$dir/usr/share/lintian" "$dir/usr/share/bug"
}

# import DIR IMAGE [CHANGE...]: the root file system as an image.
import() {
	local dir=$1 image=$2 change=()
	shift 2
	for c in "$@"; do change+=(--change "$c"); done
	tar -C "$dir" --numeric-owner -c . |
		docker import "${change[@]}" \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'CMD ["/bin/sh"]' \
			--message "oe-rt scripts/base-images.sh $RECIPE" - "$image" >/dev/null
}

exists() { docker image inspect "$1" >/dev/null 2>&1; }

build_python() {
	local work=$1 debs
	use_suite "$python_suite"
	debs=$(fetch "${python_pkgs[@]}")
	# shellcheck disable=SC2086 # one path a line, no spaces
	rootfs "$work/python" $debs
	import "$work/python" "$python_image"
}

build_node() {
	local work=$1 debs
	use_suite "$node_suite"
	debs=$(fetch "${node_pkgs[@]}")
	# shellcheck disable=SC2086
	rootfs "$work/node" $debs
	# The CA bundle update-ca-certificates would make on this machine:
	# Debian's ca-certificates (without its dependencies, perl among them)
	# and the machine's own CAs in /usr/local/share/ca-certificates, so
	# that npm reaches the registry through the machine's TLS proxy if it
	# has one. Node reads it through NODE_EXTRA_CA_CERTS (import below);
	# OpenSSL's default paths are linked to it as Debian's openssl does.
	local ca
	(cd "$archives" && flock "$cache/.oe-rt-lock" apt-get download -qq "${apt_opts[@]}" -o APT::Sandbox::User=root ca-certificates >/dev/null)
	ca=$(ls -t "$archives"/ca-certificates_*.deb | head -n 1)
	mkdir -p "$work/ca" "$work/node/etc/ssl/certs" "$work/node/usr/lib/ssl"
	dpkg-deb -x "$ca" "$work/ca"
	cat "$work/ca"/usr/share/ca-certificates/mozilla/*.crt \
		$(ls /usr/local/share/ca-certificates/*.crt 2>/dev/null) \
		>"$work/node/etc/ssl/certs/ca-certificates.crt"
	ln -s /etc/ssl/certs/ca-certificates.crt "$work/node/usr/lib/ssl/cert.pem"
	ln -s /etc/ssl/certs "$work/node/usr/lib/ssl/certs"
	# npm from the npm registry (the package bundles its dependencies),
	# with curl, else npm itself; checked against the pinned integrity.
	local tgz=$cache/npm-$NPM_VERSION.tgz
	if [ ! -s "$tgz" ]; then
		if command -v curl >/dev/null; then
			curl -fsSL --retry 3 -o "$work/npm.tgz" "https://registry.npmjs.org/npm/-/npm-$NPM_VERSION.tgz"
		elif command -v npm >/dev/null; then
			(cd "$work" && npm pack --silent "npm@$NPM_VERSION" >/dev/null && mv "npm-$NPM_VERSION.tgz" npm.tgz)
		else
			log "needs curl or npm to fetch npm $NPM_VERSION from the npm registry"
			return 1
		fi
		if [ "$(sha512sum <"$work/npm.tgz" | cut -d ' ' -f 1)" != "$NPM_SHA512" ]; then
			log "npm-$NPM_VERSION.tgz does not match its sha512 integrity"
			return 1
		fi
		mv "$work/npm.tgz" "$tgz"
	fi
	mkdir -p "$work/node/usr/local/lib/node_modules/npm" "$work/node/usr/local/bin"
	tar -xzf "$tgz" -C "$work/node/usr/local/lib/node_modules/npm" --strip-components 1 --no-same-owner
	ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/node/usr/local/bin/npm"
	ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/node/usr/local/bin/npx"
	import "$work/node" "$node_image" 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' 
}

main() {
	local want=("$@")
	[ ${#want[@]} -gt 0 ] || want=(python node)
	local w todo=()
	for w in "${want[@]}"; do
		case $w in
		python | node) ;;
		*)
			echo "usage: $0 [python] [node]" >&2
			exit 2
			;;
		esac
		local img=${w}_image
		if exists "${!img}"; then
			log "${!img} exists"
		else
			todo+=("$w")
		fi
	done
	if [ ${#todo[@]} -gt 0 ]; then
		for c in apt-get dpkg-deb docker; do
			command -v "$c" >/dev/null || { log "needs $c"; exit 1; }
		done
		if ! apt-cache show python3 >/dev/null 2>&1; then
			[ "$(id -u)" -eq 0 ] || { log "apt has no package lists; run apt-get update as root"; exit 1; }
			apt-get update -qq
		fi
		work=$(mktemp -d "${TMPDIR:-/tmp}/oe-rt-base.XXXXXX")
		trap 'rm -rf "$work"' EXIT
		# Both at once: one downloads while the other extracts or imports.
		local pids=() failed=0
		for w in "${todo[@]}"; do
			(
				start=$SECONDS img=${w}_image
				"build_$w" "$work"
				log "built ${!img} in $((SECONDS - start)) s"
			) &
			pids+=($!)
		done
		for p in "${pids[@]}"; do wait "$p" || failed=1; done
		[ "$failed" -eq 0 ] || { log "failed"; exit 1; }
	fi
	for w in "${want[@]}"; do
		local img=${w}_image
		echo "${!img}"
	done
}

main "$@"
