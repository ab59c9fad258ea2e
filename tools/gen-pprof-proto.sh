#!/usr/bin/env bash
# Regenerates Sources/LeakReport/Formats/Pprof/profile.pb.swift from profile.proto. Only needed after
# changing the .proto: the generated file is committed, so the build never needs protoc or the plugin.
#   tools/gen-pprof-proto.sh /path/to/protoc-gen-swift
# protoc comes from Debian's protobuf-compiler; build protoc-gen-swift outside this repository from
# swift-protobuf at the same version Package.swift asks for (`swift build -c release --product
# protoc-gen-swift` in a checkout of its tag).
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=${1:?usage: tools/gen-pprof-proto.sh PATH-TO-protoc-gen-swift}
dir=Sources/LeakReport/Formats/Pprof
protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Internal --swift_out="$dir" -I "$dir" "$dir/profile.proto"
