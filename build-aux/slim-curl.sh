#!/usr/bin/env bash
# slim-curl.sh: the runtime's own libcurl, with HTTP and HTTPS only.
#
#   build-aux/slim-curl.sh WORKDIR OUT
#
# Builds Debian's curl source package (upstream plus Debian's patches,
# security fixes included) in WORKDIR and links it into OUT, a shared
# library named libcodensm-curl.so.4.
#
# Why: the runtime dlopen()s libcurl for its first send.  Debian's libcurl4
# brings 31 libraries (LDAP, Kerberos, GnuTLS through LDAP, RTMP, SSH,
# HTTP/2, IDN, PSL, brotli, zstd), mapped and relocated in every process
# that sends: 9 to 11 ms of CPU and ~270 page faults on the bench VM, more
# than everything else a short tracked process pays.  The runtime posts
# JSON over HTTP(S) and needs none of them; this build links libssl,
# libcrypto and libc only.
#
# It is linked here, not by libtool, for three properties:
# - its own soname: loaded under the name libcurl.so.4, it would be what a
#   later dlopen("libcurl.so.4") of the host program got (the dynamic
#   linker matches loaded objects by soname), without file://, LDAP, ...;
# - -Bsymbolic: its calls between its own curl_* functions stay inside it,
#   even where the host program has loaded the system's libcurl;
# - lazy binding (Debian's default flags have no -z now): only the few
#   libssl and libc functions a POST uses are ever resolved.
set -euo pipefail
work=$1 out=$2
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
here=$(cd "$(dirname "$0")" && pwd)

if ! bash "$here/fetch-source.sh" curl "$work"; then
	echo "slim-curl: no curl source; 'make SLIM_CURL=0' builds without the runtime's own libcurl (it then sends through the system's)" >&2
	exit 1
fi
cd "$work/curl"
export CFLAGS="$(dpkg-buildflags --get CFLAGS 2>/dev/null || echo -O2 -g)"
export CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS 2>/dev/null || true)"
export LDFLAGS="$(dpkg-buildflags --get LDFLAGS 2>/dev/null || true)"
if [ ! -e lib/.libs/libcurl.a ]; then
	# A static-only build hides every symbol; the version script below
	# exports curl_* and nothing else.
	./configure --quiet --enable-static --disable-shared --with-pic \
		--disable-symbol-hiding --disable-dependency-tracking \
		--with-openssl --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt \
		--with-ca-path=/etc/ssl/certs \
		--without-zlib --without-brotli --without-zstd --without-nghttp2 \
		--without-libidn2 --without-libpsl --without-librtmp --without-libssh2 \
		--without-gssapi --without-libgsasl --disable-ldap --disable-ldaps \
		--disable-dict --disable-file --disable-ftp --disable-gopher \
		--disable-imap --disable-mqtt --disable-pop3 --disable-rtsp --disable-smb \
		--disable-smtp --disable-telnet --disable-tftp --disable-manual \
		>configure.out 2>&1 || { tail -30 configure.out >&2; exit 1; }
	make -s -C lib clean >/dev/null 2>&1 || true # what an earlier configure built
	make -s -C lib -j"$(nproc)" >make.out 2>&1 || { tail -30 make.out >&2; exit 1; }
fi
${CC:-cc} -shared -o "$out.tmp" -Wl,-soname,libcodensm-curl.so.4 -Wl,-Bsymbolic \
	-Wl,--version-script=lib/libcurl.vers $LDFLAGS \
	-Wl,--whole-archive lib/.libs/libcurl.a -Wl,--no-whole-archive -lssl -lcrypto
# Without its DWARF, like the system's: the runtime takes an object with
# its own .debug_info for the user's code, and would inventory libcurl.
objcopy --strip-debug "$out.tmp"
mv "$out.tmp" "$out"
