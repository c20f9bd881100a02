#!/usr/bin/env bash
# Builds the release: vmd-VERSION-linux-x86_64.tar.gz, which runs on a host with no JDK.
#   release.sh VERSION JAVA_HOME CLI_TARGET TOOLS_DIR OUT_DIR
# JAVA_HOME: the JDK whose jlink makes the runtime; CLI_TARGET: vmd-cli/target (vmd.jar,
# vmd-bench.jar); TOOLS_DIR: picocli-codegen.jar; OUT_DIR: where the tree and the tarball go.
set -euo pipefail
version="$1"; jdk="$2"; cli="$3"; tools="$4"; out="$5"
src="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
name="vmd-$version"
tree="$out/$name"
rm -rf "$tree" "$out/$name-linux-x86_64.tar.gz"
mkdir -p "$tree/bin" "$tree/lib/bench" "$tree/systemd" "$tree/etc" "$tree/completion" "$tree/man/man1"

# The Java modules vmd.jar and vmd-bench.jar use: what `jdeps --ignore-missing-deps --multi-release 17
# --print-module-deps` printed for both (2026-12-05; rerun it when a dependency changes), and what they
# reach only by reflection or service lookup: jdk.compiler (Chronicle Map compiles classes at run time),
# jdk.crypto.ec (EC keys in TLS before Java 22), jdk.naming.dns (gRPC's DNS lookups), jdk.net (Netty's
# extended socket options), jdk.zipfs, jdk.localedata (English only is kept).
modules=java.base,java.compiler,java.desktop,java.naming,java.net.http,java.sql,jdk.httpserver,jdk.jfr,\
jdk.management,jdk.unsupported,jdk.compiler,jdk.crypto.ec,jdk.naming.dns,jdk.net,jdk.zipfs,jdk.localedata
compress="--compress=2"
feature="$("$jdk/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
if [ "${feature:-17}" -ge 21 ]; then compress="--compress=zip-6"; fi
"$jdk/bin/jlink" --add-modules "$modules" --include-locales=en --strip-debug --no-man-pages \
  --no-header-files "$compress" --output "$tree/runtime"

cp "$cli/vmd.jar" "$tree/lib/vmd.jar"
cp "$cli/vmd-bench.jar" "$tree/lib/bench/vmd-bench.jar"
cp "$src/../../../bin/vmd" "$tree/bin/vmd"
cp "$src"/systemd/*.service "$src"/systemd/*.socket "$tree/systemd/"
cp "$src/etc/vmd.properties" "$tree/etc/vmd.properties"
cp "$src/INSTALL.md" "$tree/INSTALL.md"

# Completion and man pages come from the command's own model (picocli), run on the new runtime.
java="$tree/runtime/bin/java"
"$java" -cp "$tree/lib/vmd.jar" picocli.AutoComplete --force --name vmd \
  --completionScript "$tree/completion/vmd.bash" io.vmd.cli.Vmd
adoc="$out/man-adoc"
rm -rf "$adoc"
"$java" -cp "$tree/lib/vmd.jar:$tools/picocli-codegen.jar" picocli.codegen.docgen.manpage.ManPageGenerator \
  --outdir "$adoc" io.vmd.cli.Vmd
asciidoctor --backend manpage --destination-dir "$tree/man/man1" "$adoc"/*.adoc

chmod 0755 "$tree/bin/vmd"
tar -C "$out" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -czf "$out/$name-linux-x86_64.tar.gz" "$name"
echo "release: $out/$name-linux-x86_64.tar.gz ($(du -h "$out/$name-linux-x86_64.tar.gz" | cut -f1))"
