#!/usr/bin/env bash
# Prepares Docker-based `sam local` on this machine, idempotently:
#
#   infra/scripts/sam-local.sh setup   install what is missing (apt: docker.io,
#                              qemu-user-static, binfmt-support, iptables),
#                              start dockerd when none answers, register qemu
#                              for arm64 on an x86_64 host, and provide the
#                              Lambda base image (pulled, or a stand-in built
#                              from Debian's arm64 packages when no registry
#                              is reachable)
#   infra/scripts/sam-local.sh stop    stop the dockerd this script started (by PID)
#   infra/scripts/sam-local.sh status  say what is there
#   infra/scripts/sam-local.sh dynamodb-address PORT
#                              the address SAM's function containers reach
#                              the host's DynamoDB Local at: the docker0
#                              bridge on Linux (host.docker.internal does
#                              not resolve in SAM's containers there), else
#                              host.docker.internal (Docker Desktop)
#
# On a laptop with Docker running and internet it only checks. Facts behind
# each step: docs/sam-local.md (flags, images, qemu).
set -euo pipefail

cd "$(dirname "$0")/../.."
state=".sam-local"
mkdir -p "$state"
image="public.ecr.aws/lambda/provided:al2023-arm64"

say() { echo "sam-local: $*"; }

docker_answers() { docker info >/dev/null 2>&1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v iptables >/dev/null || missing+=(iptables)
    command -v ip >/dev/null || missing+=(iproute2)
    if [ "$(uname -m)" = x86_64 ]; then
        [ -e /usr/lib/binfmt.d/qemu-aarch64.conf ] || missing+=(qemu-user-static binfmt-support)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]} (apt)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

start_dockerd() {
    if docker_answers; then
        say "a Docker daemon answers"
        return
    fi
    install_packages
    say "starting dockerd (log: $state/dockerd.log)"
    # --userland-proxy=false: with docker-proxy a published port accepts
    # connections before the (qemu-slow) runtime inside listens, and SAM's
    # first invoke fails with "No response from invoke container".
    if [ "$(id -u)" = 0 ]; then
        dockerd --userland-proxy=false >"$state/dockerd.log" 2>&1 &
    else
        sudo dockerd --userland-proxy=false >"$state/dockerd.log" 2>&1 &
    fi
    echo $! >"$state/dockerd.pid"
    for _ in $(seq 1 60); do
        docker_answers && return
        sleep 0.5
    done
    say "dockerd did not start; its log:" >&2
    tail -20 "$state/dockerd.log" >&2
    exit 1
}

register_qemu() {
    [ "$(uname -m)" = x86_64 ] || return 0
    if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        return
    fi
    install_packages
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        as_root mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    say "registering qemu-aarch64 for arm64 binaries"
    as_root sh -c 'cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register'
}

# The stand-in for Lambda's provided.al2023 arm64 image: glibc, libgcc and a
# static busybox (the shell, mv and chmod SAM's own Dockerfile runs) from
# Debian's arm64 packages. Enough for cargo-lambda binaries; it is not
# Amazon Linux's userland.
build_stand_in() {
    local work="$state/base-image"
    rm -rf "$work" && mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/rootfs"
    local apt_opts=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
        -o Dir::State::Lists="$PWD/$work/lists" -o Dir::Cache::Archives="$PWD/$work/archives"
        -o Debug::NoLocking=1)
    say "building a stand-in $image from Debian's arm64 libc6, libgcc-s1, busybox-static"
    as_root apt-get "${apt_opts[@]}" update -qq
    (cd "$work/archives" && as_root apt-get "${apt_opts[@]}" download libc6:arm64 libgcc-s1:arm64 busybox-static:arm64 >/dev/null)
    for deb in "$work"/archives/*.deb; do
        dpkg-deb -x "$deb" "$work/rootfs"
    done
    mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp" "$work/rootfs/var/task" "$work/rootfs/var/runtime"
    for tool in sh mv chmod cp ls cat mkdir rm; do
        ln -sf busybox "$work/rootfs/bin/$tool"
    done
    tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
    printf 'FROM scratch\nADD rootfs.tar /\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCMD ["/bin/sh"]\n' >"$work/Dockerfile"
    # dockerd 20.10 ignores `docker import --platform`; a classic build of
    # FROM scratch records the architecture.
    DOCKER_BUILDKIT=0 docker build -q --platform linux/arm64 -t "$image" "$work" >/dev/null
    echo standin >"$state/image"
}

provide_image() {
    if docker image inspect "$image" >/dev/null 2>&1; then
        say "base image $image is there"
        return
    fi
    if timeout 60 docker pull -q "$image" >/dev/null 2>&1; then
        say "pulled $image"
        return
    fi
    build_stand_in
}

case "${1:-setup}" in
setup)
    command -v ip >/dev/null || install_packages
    start_dockerd
    register_qemu
    provide_image
    say "ready"
    ;;
stop)
    if [ -f "$state/dockerd.pid" ]; then
        pid=$(cat "$state/dockerd.pid")
        say "stopping the dockerd this script started (PID $pid)"
        as_root kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        rm -f "$state/dockerd.pid"
    else
        say "no dockerd of ours to stop"
    fi
    ;;
dynamodb-address)
    port="${2:?usage: infra/scripts/sam-local.sh dynamodb-address PORT}"
    bridge=$(ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
    echo "http://${bridge:-host.docker.internal}:$port"
    ;;
status)
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && say "qemu-aarch64 registered" || true
    if docker_answers; then
        say "Docker answers"
        docker image inspect "$image" >/dev/null 2>&1 && say "base image present ($(cat "$state/image" 2>/dev/null || echo pulled))" || say "no base image"
    else
        say "no Docker daemon answers"
    fi
    ;;
*)
    echo "usage: infra/scripts/sam-local.sh [setup|stop|status|dynamodb-address PORT]" >&2
    exit 2
    ;;
esac
