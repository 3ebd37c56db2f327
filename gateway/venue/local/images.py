"""Build, archive and push the venue's two container images, with whatever builder works.

    python -m venue.local.images build            # make images
    python -m venue.local.images push --registry R  # make images-push REGISTRY=R

venue (gateway/Dockerfile) and engine (engine/Dockerfile) are tagged
ghcr.io/tradingvenue/<name>:<chart appVersion> and :dev, and saved as OCI archives under
build/images/ for clusters without a registry (`kind load image-archive`,
`ctr -n k8s.io images import`). The builder is Docker when a daemon answers, else podman,
else buildah; these two run without a daemon under containers.conf beside this file.
Where no registry answers, the base debian:bookworm-slim is bootstrapped from Debian's
packages with mmdebstrap and tagged under its usual name, so the Dockerfiles stay as
they are.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CONTAINERS_CONF = Path(__file__).resolve().parent / "containers.conf"
CHART = ROOT / "charts" / "tradingvenue" / "Chart.yaml"
ARCHIVES = ROOT / "build" / "images"
REPOSITORY = "ghcr.io/tradingvenue"
BASE = "docker.io/library/debian:bookworm-slim"
DEV_TAG = "dev"
SOURCE = "https://github.com/tradingvenue/tradingvenue"
_BUILD_CA = "/run/host-ca.crt"
# Debian's slim images leave out documentation and translations; so does ours.
_SLIM_PATHS = [
    "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/groff/*", "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias",
]


@dataclass(frozen=True)
class Image:
    name: str
    dockerfile: str

    def ref(self, tag: str, repository: str = REPOSITORY) -> str:
        return f"{repository}/{self.name}:{tag}"


IMAGES = (Image("venue", "gateway/Dockerfile"), Image("engine", "engine/Dockerfile"))


def app_version() -> str:
    """The chart's appVersion: the one home of the images' version."""
    for line in CHART.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "appVersion":
            return value.strip().strip("\"'")
    raise SystemExit(f"{CHART}: no appVersion")


def _answers(argv: list[str]) -> bool:
    if not shutil.which(argv[0]):
        return False
    try:
        return subprocess.run(argv, capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def builder() -> str:
    """docker when its daemon answers, else podman, else buildah."""
    if _answers(["docker", "info"]):
        return "docker"
    for tool in ("podman", "buildah"):
        if shutil.which(tool):
            return tool
    raise SystemExit("no image builder: install docker, or podman (apt-get install podman "
                     "buildah mmdebstrap runc)")


def tool_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(argv), flush=True)
    return subprocess.run(argv, check=True, env=tool_env(), **kwargs)


def has_image(tool: str, ref: str) -> bool:
    argv = [tool, "image", "inspect", ref] if tool != "buildah" else [tool, "inspect", ref]
    return subprocess.run(argv, capture_output=True, env=tool_env()).returncode == 0


def image_id(tool: str, ref: str) -> str:
    argv = ([tool, "image", "inspect", "--format", "{{.Id}}", ref] if tool != "buildah" else
            [tool, "inspect", "--type", "image", "--format", "{{.FromImageID}}", ref])
    return subprocess.run(argv, capture_output=True, text=True, check=True,
                          env=tool_env()).stdout.strip()


def ensure_base(tool: str) -> None:
    """The base from a registry when one answers, else built from Debian's packages."""
    if has_image(tool, BASE):
        return
    pulled = subprocess.run([tool, "pull", BASE], capture_output=True, env=tool_env(),
                            timeout=300)
    if pulled.returncode == 0:
        return
    if tool == "docker" or not shutil.which("mmdebstrap"):
        raise SystemExit(f"cannot pull {BASE} and cannot build it (mmdebstrap missing):\n"
                         + pulled.stderr.decode(errors="replace"))
    print(f"no registry answers; building {BASE} with mmdebstrap", flush=True)
    started = time.monotonic()
    slim = [f"--dpkgopt={path}" for path in _SLIM_PATHS]
    debootstrap = subprocess.Popen(
        ["mmdebstrap", "--variant=minbase", "--quiet",
         "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", *slim,
         '--customize-hook=rm -rf "$1"/var/log/* "$1"/var/cache/debconf/*-old '
         '"$1"/var/lib/dpkg/*-old',
         "bookworm", "-"], stdout=subprocess.PIPE)
    imported = subprocess.run([tool, "import", "--change", 'CMD ["bash"]', "-", BASE],
                              stdin=debootstrap.stdout, env=tool_env(), capture_output=True)
    debootstrap.stdout.close()
    if debootstrap.wait() != 0 or imported.returncode != 0:
        raise SystemExit(f"building {BASE} failed:\n"
                         + imported.stderr.decode(errors="replace"))
    print(f"built {BASE} in {time.monotonic() - started:.0f} s", flush=True)


def revision() -> str:
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                           capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def host_ca(tool: str) -> list[str]:
    """A machine behind a TLS-inspecting proxy trusts its CA through PIP_CERT or
    SSL_CERT_FILE: podman and buildah lend that bundle to the build's RUN steps (a mount,
    never a layer) and point pip at it; the Dockerfiles take it as the PIP_CERT arg."""
    bundle = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if tool == "docker" or not bundle or not Path(bundle).is_file():
        return []
    return ["-v", f"{bundle}:{_BUILD_CA}:ro", "--build-arg", f"PIP_CERT={_BUILD_CA}"]


def labels(image: Image, version: str) -> list[str]:
    """The OCI labels of both images, given at build time (the Dockerfiles hold none):
    set on the image's config last, so a new revision rebuilds no layer."""
    values = {"title": f"tradingvenue {image.name}", "source": SOURCE, "version": version,
              "revision": revision()}
    return [part for key, value in values.items()
            for part in ("--label", f"org.opencontainers.image.{key}={value}")]


def build(tool: str, images=IMAGES) -> None:
    version = app_version()
    ensure_base(tool)
    ARCHIVES.mkdir(parents=True, exist_ok=True)
    for image in images:
        started = time.monotonic()
        command = [tool, "build"] if tool != "buildah" else [tool, "bud", "--layers"]
        run([*command, "-f", str(ROOT / image.dockerfile), *host_ca(tool),
             *labels(image, version), "-t", image.ref(version), "-t", image.ref(DEV_TAG),
             str(ROOT)])
        archive = ARCHIVES / f"{image.name}-{version}.oci.tar"
        # The archive of an image built again from the cache is the one already written:
        # `make test` builds once for `make images` and once in tests/images.
        saved = archive.with_name(archive.name + ".id")
        built = image_id(tool, image.ref(version))
        if archive.exists() and saved.exists() and saved.read_text() == built:
            print(f"{image.ref(version)}: {time.monotonic() - started:.0f} s, {archive} "
                  "(unchanged)", flush=True)
            continue
        archive.unlink(missing_ok=True)
        saved.unlink(missing_ok=True)
        if tool == "docker":
            # docker save writes a docker archive, which kind and ctr also load.
            run([tool, "save", "-o", str(archive), image.ref(version)])
        else:
            run([tool, "push", image.ref(version), f"oci-archive:{archive}:{image.ref(version)}"]
                if tool == "buildah" else
                [tool, "save", "--format", "oci-archive", "-o", str(archive), image.ref(version)])
        saved.write_text(built)
        print(f"{image.ref(version)}: {time.monotonic() - started:.0f} s, {archive}", flush=True)


def push(tool: str, registry: str, images=IMAGES) -> None:
    version = app_version()
    registry = registry.rstrip("/")
    for image in images:
        for tag in (version, DEV_TAG):
            target = image.ref(tag, registry)
            if tool == "docker":
                run([tool, "tag", image.ref(tag), target])
                run([tool, "push", target])
            else:
                run([tool, "push", image.ref(tag), f"docker://{target}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m venue.local.images", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build both images, tag them and save OCI archives")
    pushing = sub.add_parser("push", help="push both images (:<appVersion> and :dev)")
    pushing.add_argument("--registry", required=True,
                         help="where to push, e.g. ghcr.io/you or registry.example:5000/venue")
    args = parser.parse_args(argv)
    tool = builder()
    print(f"builder: {tool}", flush=True)
    if args.command == "build":
        build(tool)
    else:
        push(tool, args.registry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
